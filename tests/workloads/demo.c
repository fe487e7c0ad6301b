// SPDX-License-Identifier: MIT
/*
 * The demo workload for `make demo`: a tiny "image pipeline" with a known shape.
 *   main → run_pipeline → decode_frame → parse_header / inflate_rows
 *                       → render_frame → blend_pixels (the hottest)
 *                       → checksum_frame
 * Usage: demo [SECONDS] (default 5).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOINLINE __attribute__((noinline))
#define W 256
#define H 256

static uint32_t frame[W * H];
static volatile uint32_t sink;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

NOINLINE static uint32_t parse_header(uint32_t seed)
{
	uint32_t h = seed;

	for (int i = 0; i < 20000; i++)
		h = (h ^ (h >> 7)) * 0x9e3779b1u;
	return h;
}

NOINLINE static void inflate_rows(uint32_t seed)
{
	for (int i = 0; i < W * H; i++) {
		seed = seed * 1103515245u + 12345u;
		frame[i] = seed;
	}
}

NOINLINE static void decode_frame(uint32_t seed)
{
	inflate_rows(parse_header(seed));
}

NOINLINE static void blend_pixels(int passes)
{
	for (int p = 0; p < passes; p++)
		for (int i = 1; i < W * H; i++)
			frame[i] = (frame[i] >> 1) + (frame[i - 1] >> 2) + (uint32_t)p;
}

NOINLINE static void render_frame(void)
{
	blend_pixels(6);
}

NOINLINE static uint32_t checksum_frame(void)
{
	uint32_t c = 0;

	for (int i = 0; i < W * H; i++)
		c = (c << 5) + c + frame[i];
	return c;
}

NOINLINE static void run_pipeline(double secs)
{
	double end = now() + secs;
	uint32_t seed = 1;

	while (now() < end) {
		decode_frame(seed);
		render_frame();
		seed = checksum_frame();
	}
	sink = seed;
}

int main(int argc, char **argv)
{
	run_pipeline(argc > 1 ? atof(argv[1]) : 5.0);
	return 0;
}

// SPDX-License-Identifier: MIT
/*
 * C++ workload built -O2 -fomit-frame-pointer: templates, lambdas, std::sort and
 * std::unordered_map, so stacks cross libstdc++ and glibc, none of which keep frame pointers.
 * Usage: cxx_nofp [SECONDS] (of CPU time: a busy machine stretches the run, not shrinks the
 * work). Prints its pid first.
 */
#include <algorithm>
#include <cstdio>
#include <string>
#include <time.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

namespace work {

template <typename T> struct Shuffler {
	unsigned long state = 88172645463325252ul;
	T next()
	{
		state ^= state << 13;
		state ^= state >> 7;
		state ^= state << 17;
		return static_cast<T>(state);
	}
};

template <typename T> __attribute__((noinline)) void sort_batch(std::vector<T> &v, Shuffler<T> &s)
{
	for (auto &x : v)
		x = s.next();
	std::sort(v.begin(), v.end(), [](const T &a, const T &b) { return (a % 1000) < (b % 1000); });
}

__attribute__((noinline)) size_t count_words(const std::vector<std::string> &words)
{
	std::unordered_map<std::string, int> counts;

	for (const auto &w : words)
		counts[w]++;
	return counts.size();
}

} // namespace work

static double cpu_now()
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 5.0, end = cpu_now() + secs;
	std::vector<unsigned long> v(20000);
	work::Shuffler<unsigned long> s;
	std::vector<std::string> words;
	size_t sink = 0;

	for (int i = 0; i < 5000; i++)
		words.push_back("word" + std::to_string(i % 1500));
	printf("%d\n", (int)getpid());
	fflush(stdout);
	while (cpu_now() < end) {
		work::sort_batch(v, s);
		sink += work::count_words(words);
	}
	return sink == 0;
}

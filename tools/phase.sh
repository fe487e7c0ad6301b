#!/bin/sh
# SPDX-License-Identifier: MIT
# phase.sh NAME COMMAND...: runs COMMAND, then prints how long the phase took (`make test` names
# its phases this way, so a slow suite shows where its minutes go). Exits with COMMAND's status.
name=$1
shift
start=$(date +%s)
"$@"
rc=$?
echo "=== phase '$name': $(($(date +%s) - start)) s (exit $rc)"
exit $rc

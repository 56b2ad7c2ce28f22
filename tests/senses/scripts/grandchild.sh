#!/bin/sh
# A sense that starts a grandchild which would outlive it (sleeping 60 s with
# the sense's stdout still open), prints the grandchild's pid and exits 0.
sleep 60 &
echo "$!"
exit 0

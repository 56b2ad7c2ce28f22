#!/bin/sh
# A sense that prints 10 MiB.
head -c 10485760 /dev/zero

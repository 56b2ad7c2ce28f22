#!/bin/sh
# A sense that fails: a message on stderr and exit status 3.
echo "out before failing"
echo "something went wrong" >&2
exit 3

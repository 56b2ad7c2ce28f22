#!/bin/sh
# A sense that ignores SIGTERM (so does the sleep it starts: an ignored signal
# stays ignored across fork and exec); only SIGKILL ends it.
trap '' TERM
echo ready
sleep 60
echo never

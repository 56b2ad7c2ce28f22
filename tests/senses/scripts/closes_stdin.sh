#!/bin/sh
# A sense that closes its stdin unread and then works a little: whoever
# writes to it gets EPIPE.
exec 0<&-
sleep 0.2
echo ok

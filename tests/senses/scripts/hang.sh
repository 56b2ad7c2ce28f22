#!/bin/sh
# A sense that never finishes: it sleeps far longer than any test's timeout.
echo started
sleep 60
echo never

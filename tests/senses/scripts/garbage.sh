#!/bin/sh
# A sense whose output is not JSON, nor even text: NUL, 0xff, a lone UTF-8
# continuation byte, CR, and no final newline.
printf 'not json \000\377\200\r{"x":'

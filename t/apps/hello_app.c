/* t/apps/hello_app.c: the tests' smallest app (same as examples/hello). */
#include "../../examples/hello/hello.c"

// glibc's malloc tuning (mallopt and its parameters), which Swift's Glibc module leaves out.
#if __has_include(<malloc.h>)
#include <malloc.h>
#endif

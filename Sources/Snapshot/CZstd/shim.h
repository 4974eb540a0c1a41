// libzstd from Debian (libzstd-dev), as a system library.
#include <zstd.h>

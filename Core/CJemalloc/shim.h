// jemalloc (Debian libjemalloc-dev) as the memory allocator of the executables that import this
// module (`enchufe`, `enchufe-bench`): linked into them, its malloc and free replace glibc's for
// the whole process. Nothing is called through this module; importing it links the library.
#include <jemalloc/jemalloc.h>

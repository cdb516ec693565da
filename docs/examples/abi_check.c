/* abi_check.c - refusing a library the program was not built for. */
#include "moq_ffi.h"

#include <stdio.h>

int main(void) {
    /* [check] */
    uint32_t lib = moq_abi_version(); /* (major << 16) | (minor << 8) | patch of the library */
    if (!MOQ_FFI_ABI_COMPATIBLE(lib)) {
        fprintf(stderr, "built against moq-ffi %d.%d.%d, but the loaded library is %u.%u.%u\n",
                MOQ_FFI_VERSION_MAJOR, MOQ_FFI_VERSION_MINOR, MOQ_FFI_VERSION_PATCH, (unsigned)(lib >> 16),
                (unsigned)((lib >> 8) & 0xff), (unsigned)(lib & 0xff));
        return 1;
    }
    /* [/check] */
    printf("%s\n", moq_version());
    return 0;
}

# System libraries the static libmoq_ffi needs (Rust std, tokio, aws-lc-rs, rustls), per platform.
# Included by the top-level CMakeLists.txt and by the installed moq_ffiConfig.cmake.
#   MOQ_FFI_STATIC_SYSTEM_LIBS  for target_link_libraries / INTERFACE_LINK_LIBRARIES
#   MOQ_FFI_PC_STATIC_LIBS      the same as linker flags, for moq_ffi-static.pc (Linux)
# Linux is verified by CI (scripts/package.sh links and runs a static consumer). The Windows and
# macOS lists are what Rust's staticlib reports for the std/tokio/rustls/aws-lc stack on those
# platforms (`cargo rustc -- --print native-static-libs`); re-check them when building there.
if(WIN32)
  set(MOQ_FFI_STATIC_SYSTEM_LIBS ws2_32 userenv bcrypt ntdll advapi32 kernel32 crypt32 secur32 ncrypt iphlpapi)
  set(MOQ_FFI_PC_STATIC_LIBS "-lws2_32 -luserenv -lbcrypt -lntdll -ladvapi32 -lkernel32 -lcrypt32 -lsecur32 -lncrypt -liphlpapi")
elseif(APPLE)
  set(MOQ_FFI_STATIC_SYSTEM_LIBS "-framework CoreFoundation" "-framework Security" "-framework SystemConfiguration" iconv resolv m)
  set(MOQ_FFI_PC_STATIC_LIBS "-framework CoreFoundation -framework Security -framework SystemConfiguration -liconv -lresolv -lm")
else()
  set(MOQ_FFI_STATIC_SYSTEM_LIBS gcc_s util rt pthread m dl c)
  set(MOQ_FFI_PC_STATIC_LIBS "-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc")
endif()

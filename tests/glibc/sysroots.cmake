# sysroots.cmake -- build test programs against another glibc (a sysroot made
# by tests/glibc/make-sysroot.sh, e.g. Debian bullseye = glibc 2.31, trixie =
# glibc 2.41) with the host gcc.
#
#   include(tests/glibc/sysroots.cmake)
#
#   hi_sysroot_read(<SYSROOT> <PREFIX>)
#       Reads <SYSROOT>/sysroot.env at configure time. Sets in the caller's
#       scope <PREFIX>_FOUND (TRUE/FALSE) and, when found, <PREFIX>_<KEY> for
#       each KEY=value line: GLIBC_VERSION, LIBC6_VERSION, LOADER, LIBDIR, LIBC,
#       DEBUGDIR, LIBC_BUILD_ID, LIBC_DEBUG, DWZ_FILE, SUITE. Use it to skip
#       tests when a sysroot has not been made.
#
#   hi_add_sysroot_executable(<NAME> <SYSROOT> <SOURCES>...)
#       add_executable(<NAME>) compiled and linked with --sysroot=<SYSROOT>,
#       the sysroot's dynamic loader as ELF interpreter and its libdir as
#       DT_RPATH, so running ./NAME directly uses the sysroot's glibc. Links
#       pthread (-pthread: glibc < 2.34 needs the separate libpthread).
#       Fails at configure time if <SYSROOT>/sysroot.env does not exist.
#       The target gets the properties HI_SYSROOT, HI_GLIBC_VERSION,
#       HI_LOADER, HI_LIBDIR, HI_DEBUGDIR, HI_LIBC, HI_LIBC_BUILD_ID for use in
#       add_test() via $<TARGET_PROPERTY:NAME,HI_DEBUGDIR> etc.
#
# Sanitizers of the main project are not inherited: -fsanitize* entries
# coming from add_compile_options()/add_link_options() are filtered out of the
# target, and since CMAKE_C_FLAGS / CMAKE_EXE_LINKER_FLAGS cannot be changed
# per target, -fno-sanitize=all is appended to the compile and link options
# (it comes after those flags on the command line, so the driver neither
# instruments the code nor links libasan/libubsan). Libraries from
# link_libraries() are dropped too (host libraries do not belong in a
# sysroot program); add what you need with target_link_libraries().
#
# Notes on the flags (see make-sysroot.sh for the sysroot layout):
#  * -B<libdir>: Debian's gcc puts its own multiarch dirs
#    (/usr/lib/gcc/x86_64-linux-gnu/N/../../../x86_64-linux-gnu) before the
#    sysroot's in the library and startfile search paths, so without -B the
#    host's crt1.o/libc.so/libpthread.so would be linked in even with
#    --sysroot (the program then needs GLIBC_2.34+ symbols).
#  * --disable-new-dtags (DT_RPATH, not DT_RUNPATH): glibc dlopens
#    libgcc_s.so.1 for pthread_exit/pthread_cancel; only an executable's
#    DT_RPATH applies to such dlopens, and the host's libgcc_s.so.1 needs
#    GLIBC_2.34/2.35, so it must come from the sysroot's libdir.
include_guard(GLOBAL)
if(CMAKE_VERSION VERSION_LESS 3.20)
  message(FATAL_ERROR "sysroots.cmake needs CMake 3.20 or newer")
endif()

function(hi_sysroot_read SYSROOT PREFIX)
  get_filename_component(_root "${SYSROOT}" ABSOLUTE)
  set(_env "${_root}/sysroot.env")
  if(NOT EXISTS "${_env}")
    set(${PREFIX}_FOUND FALSE PARENT_SCOPE)
    return()
  endif()
  # Reconfigure when the sysroot is remade.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_env}")
  file(STRINGS "${_env}" _lines REGEX "^[A-Za-z_][A-Za-z0-9_]*=")
  foreach(_line IN LISTS _lines)
    if(_line MATCHES "^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
      set(${PREFIX}_${CMAKE_MATCH_1} "${CMAKE_MATCH_2}" PARENT_SCOPE)
      set(_have_${CMAKE_MATCH_1} TRUE)
    endif()
  endforeach()
  foreach(_key GLIBC_VERSION LOADER LIBDIR)
    if(NOT _have_${_key})
      message(FATAL_ERROR "hi_sysroot_read: ${_env} has no ${_key}= line; remake it with tests/glibc/make-sysroot.sh")
    endif()
  endforeach()
  set(${PREFIX}_FOUND TRUE PARENT_SCOPE)
endfunction()

function(hi_add_sysroot_executable NAME SYSROOT)
  set(_sources ${ARGN})
  if(NOT _sources)
    message(FATAL_ERROR "hi_add_sysroot_executable(${NAME}): no sources given")
  endif()
  get_filename_component(_root "${SYSROOT}" ABSOLUTE)
  hi_sysroot_read("${_root}" _hs)
  if(NOT _hs_FOUND)
    message(FATAL_ERROR
      "hi_add_sysroot_executable(${NAME}): ${_root}/sysroot.env not found.\n"
      "Make the sysroot first: tests/glibc/make-sysroot.sh <bullseye|trixie> ${_root}")
  endif()
  foreach(_p "${_hs_LOADER}" "${_hs_LIBDIR}")
    if(NOT EXISTS "${_p}")
      message(FATAL_ERROR "hi_add_sysroot_executable(${NAME}): ${_p} (from ${_root}/sysroot.env) does not exist")
    endif()
  endforeach()

  add_executable(${NAME} ${_sources})

  # Drop sanitizer options inherited from the directory (add_compile_options,
  # add_link_options) and libraries from link_libraries().
  foreach(_prop COMPILE_OPTIONS LINK_OPTIONS)
    get_target_property(_opts ${NAME} ${_prop})
    if(_opts)
      list(FILTER _opts EXCLUDE REGEX "sanitize")
      set_property(TARGET ${NAME} PROPERTY ${_prop} "${_opts}")
    endif()
  endforeach()
  set_property(TARGET ${NAME} PROPERTY LINK_LIBRARIES "")

  target_compile_options(${NAME} PRIVATE
    "--sysroot=${_root}"
    -pthread
    -fno-sanitize=all)
  target_link_options(${NAME} PRIVATE
    "--sysroot=${_root}"
    "-B${_hs_LIBDIR}"
    -pthread
    -fno-sanitize=all
    "LINKER:--dynamic-linker=${_hs_LOADER}"
    "LINKER:-rpath=${_hs_LIBDIR}"
    "LINKER:--disable-new-dtags")

  set_target_properties(${NAME} PROPERTIES
    HI_SYSROOT "${_root}"
    HI_GLIBC_VERSION "${_hs_GLIBC_VERSION}"
    HI_LOADER "${_hs_LOADER}"
    HI_LIBDIR "${_hs_LIBDIR}"
    HI_DEBUGDIR "${_hs_DEBUGDIR}"
    HI_LIBC "${_hs_LIBC}"
    HI_LIBC_BUILD_ID "${_hs_LIBC_BUILD_ID}")
endfunction()

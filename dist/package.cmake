# The Debian package: `cpack -G DEB` in a build configured with
# -DCMAKE_INSTALL_PREFIX=/usr (tests/install/deb.py does it).  Its
# dependencies come from dpkg-shlibdeps (libc6, libdw1, libelf1,
# libjansson4 on Debian 12).
set(CPACK_GENERATOR "DEB" CACHE STRING "package formats of cpack")
set(CPACK_PACKAGE_NAME heapinspect)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
	"glibc malloc figures of a live process, read from outside")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
"glibc malloc figures of a live process, read from outside
 heapinspect stops a running process for a moment with ptrace, finds glibc's
 allocator state in it, reads it and prints the figures mallinfo2() would
 return inside the process, per arena, beside RSS, PSS, USS and swap; and
 watches a process or a systemd service over time (JSON Lines, OpenMetrics
 for node_exporter), compares snapshots, names leaks and fragmentation, and
 draws a series.  Linux x86_64, glibc 2.31 to 2.41 without debug
 information, other versions with it.")
set(HI_DEB_MAINTAINER "heapinspect developers <heapinspect@invalid>" CACHE
	STRING "the Maintainer field of the Debian package")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${HI_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
	"libcap2-bin, libc6-dbg, prometheus-node-exporter")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
set(CPACK_STRIP_FILES ON)
include(CPack)

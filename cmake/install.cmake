# cmake/install.cmake - what `cmake --install` puts where, and the Debian
# package (CPack DEB) made of it. Included once from the top CMakeLists.txt.
#
#   cmake --install build --prefix /usr [DESTDIR=...]   the Debian layout:
#     /usr/sbin/triaged, /usr/sbin/triagectl
#     /etc/triaged/triaged.conf                (an existing one is kept)
#     /lib/systemd/system/triaged.service      (pkg-config systemd)
#     /usr/lib/sysusers.d/triaged.conf, /usr/lib/tmpfiles.d/triaged.conf
#     /usr/lib/triaged/backends/example-backend
#     /usr/share/man/man{5,8}/*.gz, /usr/share/doc/triaged/*
#   cpack -G DEB --config build/CPackConfig.cmake       triaged_<ver>_<arch>.deb
#
# The prefix is often chosen only at install time (cmake --install --prefix,
# CPack), so the directories outside the prefix (/etc, /lib/systemd/system)
# are decided in the install script, from the prefix it runs with: /usr gets
# the Debian paths, any other prefix keeps everything below itself.

set(TRIAGED_MAN_PAGES triaged.8 triaged.conf.5 triagectl.8)
set(TRIAGED_MAN_SOURCE_DIR ${PROJECT_SOURCE_DIR}/docs/man CACHE PATH
  "Where triaged.8, triaged.conf.5 and triagectl.8 are")

# Re-run the configure step when a man page or a document appears (they are
# written apart from the build rules, and installed only when present).
file(GLOB _triaged_doc_watch CONFIGURE_DEPENDS
  ${PROJECT_SOURCE_DIR}/docs/*.md ${TRIAGED_MAN_SOURCE_DIR}/*)

# systemd's own idea of its system unit directory (/lib/systemd/system on
# Debian 12), used when installing to /usr.
set(_unitdir "")
pkg_get_variable(_unitdir systemd systemdsystemunitdir)
if(NOT _unitdir)
  set(_unitdir /lib/systemd/system)
endif()
set(TRIAGED_SYSTEMD_UNITDIR "${_unitdir}" CACHE STRING
  "systemd system unit directory used when installing with prefix /usr")

# ------------------------------------------------------------------ man pages
# gzip -9n at build time into build/man/, installed from there.
set(_man_gz "")
foreach(page ${TRIAGED_MAN_PAGES})
  set(src ${TRIAGED_MAN_SOURCE_DIR}/${page})
  if(NOT EXISTS ${src})
    message(STATUS "triaged: ${src} does not exist yet: not installed")
    continue()
  endif()
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  set(gz ${PROJECT_BINARY_DIR}/man/${page}.gz)
  add_custom_command(OUTPUT ${gz}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND gzip -9n -c ${src} > ${gz}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${gz}.tmp ${gz}
    DEPENDS ${src}
    COMMENT "gzip -9n ${page}"
    VERBATIM)
  list(APPEND _man_gz ${gz})
  install(FILES ${gz} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(triaged_man ALL DEPENDS ${_man_gz})

# ------------------------------------------------------------------ binaries
install(TARGETS triaged triagectl RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})

# The exec backend example, where conf/triaged.conf's commented example
# points (/usr/lib/triaged/backends/example-backend).
install(PROGRAMS ${PROJECT_SOURCE_DIR}/src/backends/example-backend
  DESTINATION lib/triaged/backends)

# ------------------------------------------------------------------ systemd
# sysusers.d and tmpfiles.d live in <prefix>/lib (not the multiarch libdir).
install(FILES ${PROJECT_SOURCE_DIR}/systemd/triaged.sysusers
  DESTINATION lib/sysusers.d RENAME triaged.conf)
install(FILES ${PROJECT_SOURCE_DIR}/systemd/triaged.tmpfiles
  DESTINATION lib/tmpfiles.d RENAME triaged.conf)

# The config file and the unit, at install time. file(INSTALL) adds
# $DESTDIR itself and records the files in install_manifest.txt.
#  - /etc for prefix / or /usr (as GNUInstallDirs does), an absolute
#    CMAKE_INSTALL_SYSCONFDIR as given, else <prefix>/<sysconfdir>;
#  - an existing, different triaged.conf is an administrator's: it is kept
#    and the new default is written beside it as triaged.conf.new;
#  - the unit names /usr/sbin/triaged and /etc/triaged/triaged.conf; for
#    another prefix a copy naming the installed paths is installed.
install(CODE "
set(_triaged_src \"${PROJECT_SOURCE_DIR}\")
set(_triaged_bin \"${PROJECT_BINARY_DIR}\")
set(_triaged_sysconfdir \"${CMAKE_INSTALL_SYSCONFDIR}\")
set(_triaged_sbindir \"${CMAKE_INSTALL_SBINDIR}\")
set(_triaged_unitdir_usr \"${TRIAGED_SYSTEMD_UNITDIR}\")
" CODE [[
string(REGEX REPLACE "/+$" "" _triaged_prefix "${CMAKE_INSTALL_PREFIX}")
if(IS_ABSOLUTE "${_triaged_sysconfdir}")
  set(_triaged_etc "${_triaged_sysconfdir}")
elseif(_triaged_prefix STREQUAL "" OR _triaged_prefix STREQUAL "/usr")
  set(_triaged_etc "/${_triaged_sysconfdir}")
else()
  set(_triaged_etc "${_triaged_prefix}/${_triaged_sysconfdir}")
endif()
if(_triaged_prefix STREQUAL "/usr")
  set(_triaged_unitdir "${_triaged_unitdir_usr}")
else()
  set(_triaged_unitdir "${_triaged_prefix}/lib/systemd/system")
endif()

set(_conf "$ENV{DESTDIR}${_triaged_etc}/triaged/triaged.conf")
if(EXISTS "${_conf}" AND NOT IS_DIRECTORY "${_conf}")
  file(SHA256 "${_conf}" _old)
  file(SHA256 "${_triaged_src}/conf/triaged.conf" _new)
  if(NOT _old STREQUAL _new)
    message(STATUS "Keeping ${_conf} (edited); the new default goes to triaged.conf.new")
    file(INSTALL DESTINATION "${_triaged_etc}/triaged" TYPE FILE
      RENAME triaged.conf.new FILES "${_triaged_src}/conf/triaged.conf")
    set(_conf "")
  endif()
endif()
if(_conf)
  file(INSTALL DESTINATION "${_triaged_etc}/triaged" TYPE FILE
    FILES "${_triaged_src}/conf/triaged.conf")
endif()

set(_unit "${_triaged_src}/systemd/triaged.service")
if(NOT _triaged_prefix STREQUAL "/usr" OR NOT _triaged_etc STREQUAL "/etc")
  file(READ "${_unit}" _text)
  string(REPLACE "/usr/sbin/triaged" "${_triaged_prefix}/${_triaged_sbindir}/triaged" _text "${_text}")
  string(REPLACE "/etc/triaged/" "${_triaged_etc}/triaged/" _text "${_text}")
  set(_unit "${_triaged_bin}/systemd/triaged.service")
  file(WRITE "${_unit}" "${_text}")
endif()
file(INSTALL DESTINATION "${_triaged_unitdir}" TYPE FILE FILES "${_unit}")
]])

# ------------------------------------------------------------------ docs
set(TRIAGED_DEB_MAINTAINER "triaged maintainers <maintainers@users.noreply.r-seed-b24e9c3f.example>"
  CACHE STRING "Maintainer of the Debian package (control file, changelog)")

# triaged_write_if_changed(FILE CONTENT): write FILE only when CONTENT
# differs (its time stamp drives the build rules that read it)
function(triaged_write_if_changed file content)
  file(WRITE ${file}.tmp "${content}")
  configure_file(${file}.tmp ${file} COPYONLY)
  file(REMOVE ${file}.tmp)
endfunction()

set(_docs ${PROJECT_SOURCE_DIR}/README.md)
foreach(doc conformance.md benchmarks.md)
  if(EXISTS ${PROJECT_SOURCE_DIR}/docs/${doc})
    list(APPEND _docs ${PROJECT_SOURCE_DIR}/docs/${doc})
  endif()
endforeach()

# copyright and changelog.gz, which every Debian package carries in
# /usr/share/doc/<package>. The copyright file holds the tree's LICENSE or
# COPYING when there is one, else says that none is stated.
set(_license "")
foreach(name LICENSE LICENSE.md LICENSE.txt COPYING)
  if(NOT _license AND EXISTS ${PROJECT_SOURCE_DIR}/${name})
    file(READ ${PROJECT_SOURCE_DIR}/${name} _license)
  endif()
endforeach()
if(NOT _license)
  set(_license "The triaged source tree states no license (it has no LICENSE or
COPYING file): ask the maintainers before redistributing this package.
")
endif()
string(TIMESTAMP _year "%Y" UTC)
triaged_write_if_changed(${PROJECT_BINARY_DIR}/doc/copyright
"triaged ${PROJECT_VERSION}, a DICOM store-and-forward AI triage daemon.

Maintainers: ${TRIAGED_DEB_MAINTAINER}
Copyright (C) ${_year} the triaged authors

${_license}")
list(APPEND _docs ${PROJECT_BINARY_DIR}/doc/copyright)

# A native package's changelog: one entry for this version, dated the
# day of the configure step (SOURCE_DATE_EPOCH when set).
string(TIMESTAMP _day "%a, %d %b %Y 00:00:00 +0000" UTC)
triaged_write_if_changed(${PROJECT_BINARY_DIR}/doc/changelog
"triaged (${PROJECT_VERSION}) unstable; urgency=medium

  * triaged ${PROJECT_VERSION}, built with CMake and CPack from the triaged
    source tree; its history is the project's git log.

 -- ${TRIAGED_DEB_MAINTAINER}  ${_day}
")
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/doc/changelog.gz
  COMMAND gzip -9n -c ${PROJECT_BINARY_DIR}/doc/changelog > ${PROJECT_BINARY_DIR}/doc/changelog.gz.tmp
  COMMAND ${CMAKE_COMMAND} -E rename ${PROJECT_BINARY_DIR}/doc/changelog.gz.tmp ${PROJECT_BINARY_DIR}/doc/changelog.gz
  DEPENDS ${PROJECT_BINARY_DIR}/doc/changelog
  COMMENT "gzip -9n changelog"
  VERBATIM)
add_custom_target(triaged_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/doc/changelog.gz)
list(APPEND _docs ${PROJECT_BINARY_DIR}/doc/changelog.gz)

install(FILES ${_docs} DESTINATION ${CMAKE_INSTALL_DOCDIR})

# ------------------------------------------------------------------ Debian package
# cpack -G DEB [-B OUTDIR] --config build/CPackConfig.cmake
# The install runs with prefix /usr under a staging DESTDIR, so the paths
# above come out as on a Debian system (/etc, /lib/systemd/system).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME triaged)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "triaged")
set(CPACK_PACKAGE_CONTACT "${TRIAGED_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "DICOM store-and-forward AI triage daemon")
set(CPACK_PACKAGE_DESCRIPTION
"triaged receives studies from modalities or a PACS (DICOM C-STORE), keeps
every instance durably, decides per study which AI analysis applies
(fractures on radiographs, mammography screening, bone age), hands the study
to a pluggable inference backend (built-in reference, exec, HTTP, KServe),
and delivers the originals and the results (a TID 1500 Structured Report and
secondary-capture overlays) to the PACS with retries. Its queue lives in
SQLite; triagectl inspects and steers it.
.
The service is installed but neither enabled nor started: set the AE title
and the destinations in /etc/triaged/triaged.conf first.")
set(CPACK_SET_DESTDIR ON)                 # DESTDIR=<staging>, prefix /usr
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)                 # install/strip: no debug info in the package

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_NAME triaged)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${TRIAGED_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies come from dpkg-shlibdeps (appended to the list
# below); what it cannot see: the overlay font (cairo through fontconfig),
# systemd-sysusers and systemd-tmpfiles (postinst).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "fonts-dejavu-core, systemd")
# TLS to http/kserve backends and dicomweb destinations; the example
# backend is a python3 script.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "python3, dcmtk")
# conffiles and maintainer scripts (cmake/deb/): create the user and
# /var/lib/triaged, tell systemd; never enable or start the service, never
# delete the spool.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/cmake/deb/conffiles
  ${PROJECT_SOURCE_DIR}/cmake/deb/postinst
  ${PROJECT_SOURCE_DIR}/cmake/deb/prerm
  ${PROJECT_SOURCE_DIR}/cmake/deb/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)

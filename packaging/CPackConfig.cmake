# The Debian package: `cpack -G DEB` in a build folder (or `cmake --build BUILD --target package`) writes
# cloq-studio_<version>_<arch>.deb with cloq, cloq-studio, the .desktop entry, AppStream metainfo, the hicolor icon
# and the cloq(1) man page. packaging/package-test.sh builds it and installs it into a throw-away root.
include(GNUInstallDirs)
include(${CMAKE_CURRENT_LIST_DIR}/manpage.cmake)

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "cloq-studio")
set(CPACK_PACKAGE_VENDOR "CLoQ Studio developers")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "quantize LLMs and initialize LoRA adapters with calibrated CLoQ")
set(CPACK_PACKAGE_DESCRIPTION
"CLoQ Studio quantizes Llama-family language models (INT with GPTQ or round-to-nearest, optional MagR) and
initializes LoRA adapters on the quantized weights with CLoQ, the calibrated closed-form initialization, compared
layer by layer with LoftQ, plain SVD and the zero initialization on real calibration activations. It exports PEFT
LoRA adapters and GPTQ checkpoints that the Python ecosystem loads as they are.
This package holds the desktop application (cloq-studio) and its command-line twin (cloq).")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)   # RelWithDebInfo binaries carry ~10x their size in DWARF; users need none of it

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)   # cloq-studio_0.1.0_amd64.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "CLoQ Studio developers <cloq-studio@example.org>")
set(CPACK_DEBIAN_PACKAGE_SECTION "science")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
# Library dependencies are computed from the binaries by dpkg-shlibdeps (libtorch1.13, libqt6*, libquazip1-qt6,
# libstdc++, ...), so they match what the programs really link. Added by hand: what is loaded at run time and
# therefore invisible to dpkg-shlibdeps.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(_cloq_runtime_depends
  # LibTorch's eigh/SVD go through the system LAPACK; the reference netlib one is 5-10x slower (docs/design.md).
  "libopenblas0-pthread")
set(_cloq_recommends "")
if(CLOQ_BUILD_GUI)
  # The icon and the charts' SVG export load Qt's svg image-format and icon-engine plugins.
  list(APPEND _cloq_runtime_depends "libqt6svg6")
  # Wayland/EGL platform plugins (xcb and offscreen come with libqt6gui6) and a font for the charts.
  set(_cloq_recommends "qt6-qpa-plugins, fonts-dejavu-core")
endif()
list(JOIN _cloq_runtime_depends ", " CPACK_DEBIAN_PACKAGE_DEPENDS)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "${_cloq_recommends}")

include(CPack)

# The install test (packaging/package-test.sh): a CTest test with label `package`, registered only on request
# because it needs root and a finished build; packaging/run-tests.sh runs it as its own stage.
option(CLOQ_PACKAGE_TEST "Register the .deb build + install test (CTest label 'package'; needs root)" OFF)
if(CLOQ_BUILD_TESTS AND CLOQ_PACKAGE_TEST)
  add_test(NAME package_deb COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/package-test.sh ${CMAKE_BINARY_DIR}
                                         ${CLOQ_SHARED_DIR})
  set_tests_properties(package_deb PROPERTIES LABELS package TIMEOUT 900)
endif()

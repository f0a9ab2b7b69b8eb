# cloq(1), generated at build time from the built `cloq --help` and each command's --help
# (packaging/make_manpage.py), so the page always documents the options the program really has.
# Sanitizer and fuzz builds skip it: they are never packaged.
if(TARGET cloq AND NOT CMAKE_CROSSCOMPILING AND NOT CLOQ_SANITIZE AND NOT CLOQ_FUZZ)
  find_package(Python3 REQUIRED COMPONENTS Interpreter)
  set(CLOQ_MANPAGE ${CMAKE_BINARY_DIR}/man/cloq.1.gz)
  add_custom_command(OUTPUT ${CLOQ_MANPAGE}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND Python3::Interpreter ${CMAKE_CURRENT_LIST_DIR}/make_manpage.py $<TARGET_FILE:cloq> ${PROJECT_VERSION}
            ${CLOQ_MANPAGE}
    DEPENDS cloq ${CMAKE_CURRENT_LIST_DIR}/make_manpage.py
    COMMENT "Generating the cloq(1) man page from cloq --help"
    VERBATIM)
  add_custom_target(cloq_manpage ALL DEPENDS ${CLOQ_MANPAGE})
  install(FILES ${CLOQ_MANPAGE} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

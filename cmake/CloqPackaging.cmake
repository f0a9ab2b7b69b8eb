# CPack DEB configuration lives in packaging/ (issue 8 fills it in).
if(EXISTS ${CMAKE_SOURCE_DIR}/packaging/CPackConfig.cmake)
  include(${CMAKE_SOURCE_DIR}/packaging/CPackConfig.cmake)
endif()

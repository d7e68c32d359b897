# Build-time script: writes a C++ source that holds a text file as one std::string_view, so the
# dashboard's page and Chart.js are inside the binary (it serves them with no files around it).
#   cmake -DINPUT=file -DOUTPUT=file.cpp -DSYMBOL=name -DHEADER=dashboard/assets.h -P EmbedText.cmake
file(READ "${INPUT}" content)
set(delimiter "AHA_EMBED")
string(FIND "${content}" ")${delimiter}\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw-string delimiter )${delimiter}\"; choose another in ${CMAKE_CURRENT_LIST_FILE}")
endif()
# A raw string literal keeps every byte as it is; it is split every 60000 bytes because
# compilers only promise to take literals of 65536 characters (adjacent literals are joined).
string(LENGTH "${content}" length)
set(body "")
set(offset 0)
while(offset LESS length)
  string(SUBSTRING "${content}" ${offset} 60000 piece)
  string(APPEND body "R\"${delimiter}(${piece})${delimiter}\"\n")
  math(EXPR offset "${offset} + 60000")
endwhile()
if(body STREQUAL "")
  set(body "\"\"")
endif()
file(WRITE "${OUTPUT}.tmp" "// Generated from ${INPUT} by cmake/EmbedText.cmake; do not edit.\n#include \"${HEADER}\"\n\nnamespace aha::dashboard::assets {\nextern const std::string_view ${SYMBOL};\nconst std::string_view ${SYMBOL} =\n${body};\n}  // namespace aha::dashboard::assets\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")

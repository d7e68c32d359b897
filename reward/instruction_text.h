// Text helpers of the verifiable instruction rewards (reward/instruction_rewards.cpp): which
// part of a completion is the final answer, Unicode simple lower-casing, and words.
//
// The final answer is what the reader gets after the reasoning: the text after the last
// </think> when there is one; with no </think>, nothing when the reasoning was opened (a
// <think> in the completion, or think_in_prompt: the prompt opened it) and never closed (the
// model ran out of tokens mid-thought), else the whole completion. The R1 format's <answer>
// and </answer> tags are markup, not answer text, and are removed. Surrounding whitespace is
// trimmed.
//
// Lower-casing is Unicode's simple case mapping for the scripts a reply is likely to use:
// ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic (basic and extended), Armenian and the
// fullwidth Latin letters (U+FF21..). Other code points map to themselves. Invalid UTF-8 bytes
// are kept as they are.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace aha::reward {

std::string final_answer_text(std::string_view completion, bool think_in_prompt);

// The simple lower-case mapping of one code point (itself when it has none).
uint32_t simple_lowercase(uint32_t code_point);
// Every character of text lower-cased as above.
std::string lowercase_utf8(std::string_view text);

// True for a code point that is part of a word: an ASCII letter or digit, or a non-ASCII
// letter or digit (anything from U+00C0 up that is not a space or punctuation of the General
// Punctuation, CJK Symbols, fullwidth punctuation blocks, and not U+00D7 / U+00F7).
bool is_word_char(uint32_t code_point);
// True for Han, Hiragana, Katakana and Hangul syllables: scripts written without spaces, where
// each character counts as one word and a keyword needs no boundary.
bool is_unspaced_script(uint32_t code_point);

// Words: maximal runs of word characters, each Han/Kana/Hangul character one word on its own.
// "don't" is two words, "3.5" two, "state-of-the-art" four (as splitting on non-letters does).
int64_t count_words(std::string_view text);

}  // namespace aha::reward

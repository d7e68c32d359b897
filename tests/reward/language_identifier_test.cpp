// Language identification by CLD2 and the language_consistency reward that uses it: languages
// of one script told apart, shares of mixed reasoning (hand-counted bytes), what is left out of
// the scored text, and the options' errors.
#include "reward/language_identifier.h"

#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "reward/reward_registry.h"

namespace aha::reward {
namespace {

double consistency(const std::string& options, const std::string& completion) {
  auto reward = create_reward({"language_consistency", "language_consistency", 1.0, 10.0, options});
  return reward->score(RewardExample{}, Completion{completion}).value;
}

// One sentence of reasoning in each language, each long enough for CLD2 to be sure.
const std::vector<std::pair<std::string, std::string>> kReasoning = {
    {"en", "First we add the two numbers, and then we check whether the result is still correct."},
    {"fr", "D'abord nous additionnons les deux nombres, puis nous vérifions si le résultat est encore correct."},
    {"de", "Zuerst addieren wir die beiden Zahlen und prüfen dann, ob das Ergebnis noch richtig ist."},
    {"es", "Primero sumamos los dos números y luego comprobamos si el resultado sigue siendo correcto."},
    {"it", "Prima sommiamo i due numeri e poi controlliamo se il risultato è ancora corretto."},
    {"pt", "Primeiro somamos os dois números e depois verificamos se o resultado ainda está correto."},
    {"nl", "Eerst tellen we de twee getallen op en daarna controleren we of het resultaat nog steeds klopt."},
    {"ru", "Сначала мы складываем два числа, а затем проверяем, правильный ли результат."},
    {"zh", "首先我们把这两个数相加，然后检查结果是否仍然正确。"},
};

TEST(LanguageIdentifier, TellsLatinScriptLanguagesApart) {
  for (const auto& [code, text] : kReasoning) {
    LanguageIdentification found = identify_languages(text);
    ASSERT_FALSE(found.languages.empty()) << code;
    EXPECT_EQ(found.languages[0].code, code) << text;
    EXPECT_DOUBLE_EQ(found.share_of(code), 1.0) << text;
  }
}

TEST(LanguageIdentifier, SharesOfAMixAreByBytes) {
  // 156 bytes of English, then 100 of French: 0.61 and 0.39 by bytes. CLD2 assigns whole
  // chunks of a few words, which need not end where the sentences do, so a share is close to
  // the byte ratio but not exact (0.63 / 0.37 here).
  std::string english = kReasoning[0].second + " Then we multiply by three and subtract the first number from the total.";
  std::string french = kReasoning[1].second;
  ASSERT_EQ(english.size(), 156u);
  ASSERT_EQ(french.size(), 100u);
  LanguageIdentification found = identify_languages(english + " " + french);
  ASSERT_EQ(found.languages.size(), 2u);
  EXPECT_NEAR(found.share_of("en") + found.share_of("fr"), 1.0, 1e-9);
  EXPECT_NEAR(found.share_of("en"), 156.0 / 256.0, 0.05);
  EXPECT_EQ(found.share_of("de"), 0.0);
}

TEST(LanguageIdentifier, NothingToIdentifyAndInvalidUtf8) {
  EXPECT_TRUE(identify_languages("").languages.empty());
  EXPECT_TRUE(identify_languages("1 + 2 = 3, 4 * 5 = 20").languages.empty());
  // Invalid bytes are replaced, not a reason to give up on the rest.
  std::string text = kReasoning[1].second + "\xff\xfe";
  EXPECT_EQ(identify_languages(text).share_of("fr"), 1.0);
}

TEST(LanguageIdentifier, ThreadsGetTheSameAnswersAsOne) {
  // Rewards are scored from several threads at once (reward/reward.h); CLD2 keeps no state
  // between calls, so every thread must see what one thread sees.
  std::string mixed = kReasoning[0].second + " " + kReasoning[2].second + " " + kReasoning[8].second;
  LanguageIdentification expected = identify_languages(mixed);
  ASSERT_GE(expected.languages.size(), 2u);
  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        LanguageIdentification found = identify_languages(mixed);
        bool same = found.languages.size() == expected.languages.size();
        for (size_t k = 0; same && k < found.languages.size(); ++k)
          same = found.languages[k].code == expected.languages[k].code &&
                 found.languages[k].share == expected.languages[k].share;
        mismatches[t] += !same;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(LanguageIdentifier, KnownCodesAreIso6391) {
  EXPECT_TRUE(is_identifiable_language("fr"));
  EXPECT_TRUE(is_identifiable_language("zh"));
  EXPECT_TRUE(is_identifiable_language("he"));  // CLD2 says "iw"
  EXPECT_FALSE(is_identifiable_language("iw"));
  EXPECT_FALSE(is_identifiable_language("xx"));
  EXPECT_FALSE(is_identifiable_language("zh-Hant"));
  EXPECT_FALSE(is_identifiable_language("eng"));
}

TEST(LanguageConsistencyCld2, ScoresTheTargetLanguagesShareOfTheReasoning) {
  const std::string& english = kReasoning[0].second;
  const std::string& french = kReasoning[1].second;
  const std::string& german = kReasoning[2].second;
  // French reasoning: 1 for "fr", 0 for "en" and "de" (the script path would give "en" 1).
  std::string all_french = "<think>" + french + "</think><answer>42</answer>";
  EXPECT_DOUBLE_EQ(consistency(R"({"language": "fr"})", all_french), 1.0);
  EXPECT_DOUBLE_EQ(consistency(R"({"language": "en", "identifier": "cld2"})", all_french), 0.0);
  EXPECT_DOUBLE_EQ(consistency(R"({"language": "de"})", all_french), 0.0);
  EXPECT_DOUBLE_EQ(consistency(R"({"language": "en", "identifier": "script"})", all_french), 1.0);
  // Half German, half English reasoning: about half for each.
  std::string mixed = "<think>" + german + " " + english + "</think><answer>42</answer>";
  double de = consistency(R"({"language": "de"})", mixed);
  EXPECT_GT(de, 0.35);
  EXPECT_LT(de, 0.65);
  EXPECT_NEAR(de + consistency(R"({"language": "en", "identifier": "cld2"})", mixed), 1.0, 1e-9);
  // Scope: an answer in another language counts only with scope "completion".
  std::string english_answer = "<think>" + french + "</think><answer>" + english + "</answer>";
  EXPECT_DOUBLE_EQ(consistency(R"({"language": "fr"})", english_answer), 1.0);
  EXPECT_LT(consistency(R"({"language": "fr", "scope": "completion"})", english_answer), 0.7);
  // LaTeX commands are not words: \frac, \times and \left do not make reasoning English.
  std::string latex = "<think>" + french + " \\frac{1}{2} \\times \\left( x \\right) \\sqrt{2}</think>";
  EXPECT_DOUBLE_EQ(consistency(R"({"language": "fr"})", latex), 1.0);
  // Nothing to identify scores 0.
  EXPECT_DOUBLE_EQ(consistency(R"({"language": "fr"})", "<think>1 + 2 = 3</think><answer>3</answer>"), 0.0);
}

TEST(LanguageConsistencyCld2, OptionErrorsNameWhatIsWrong) {
  try {
    consistency(R"({"language": "klingon"})", "x");
    FAIL() << "an unknown language was accepted";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("'language' \"klingon\""), std::string::npos) << message;
    EXPECT_NE(message.find("en, es, et"), std::string::npos) << message;  // lists the known codes
  }
  EXPECT_THROW(consistency(R"({"identifier": "fasttext"})", "x"), Error);
  EXPECT_THROW(consistency(R"({"language": "de", "identifier": "script"})", "x"), Error);
}

}  // namespace
}  // namespace aha::reward

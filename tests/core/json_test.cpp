#include "core/json.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

#include "core/error.h"

namespace {

using aha::test::error_of;

TEST(Json, ParseErrorNamesDocumentAndOffset) {
  auto msg = error_of([] { aha::json::parse("{\"a\": 1,", "recipe x.json"); });
  EXPECT_NE(msg.find("recipe x.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("byte"), std::string::npos) << msg;
}

TEST(Json, TypedFieldsAndFallbacks) {
  auto doc = aha::json::parse(R"({"n": 4, "f": 4.0, "x": 0.5, "s": "hi", "b": true, "z": null})", "t");
  aha::json::ObjectReader r(doc, "t");
  EXPECT_EQ(r.get_int("n"), 4);
  EXPECT_EQ(r.get_int("f"), 4);  // integral float accepted
  EXPECT_DOUBLE_EQ(r.get_double("x"), 0.5);
  EXPECT_EQ(r.get_string("s"), "hi");
  EXPECT_TRUE(r.get_bool("b"));
  EXPECT_FALSE(r.has("z"));
  EXPECT_EQ(r.get_int("z", 7), 7);
  EXPECT_EQ(r.get_string("missing", "d"), "d");
}

TEST(Json, WrongTypeAndMissingFieldAreNamed) {
  auto doc = aha::json::parse(R"({"n": 4.5, "s": 3})", "config.json");
  aha::json::ObjectReader r(doc, "config.json");
  auto m1 = error_of([&] { r.get_int("n"); });
  EXPECT_NE(m1.find("'n' must be an integer"), std::string::npos) << m1;
  auto m2 = error_of([&] { r.get_string("s"); });
  EXPECT_NE(m2.find("'s' must be a string"), std::string::npos) << m2;
  auto m3 = error_of([&] { r.get_int("hidden_size"); });
  EXPECT_NE(m3.find("missing required field 'hidden_size'"), std::string::npos) << m3;
}

TEST(Json, UnknownKeysListed) {
  auto doc = aha::json::parse(R"({"lr": 1, "lrr": 2})", "recipe");
  aha::json::ObjectReader r(doc, "recipe");
  auto msg = error_of([&] { r.reject_unknown({"lr", "beta"}); });
  EXPECT_NE(msg.find("'lrr'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("known keys are: lr, beta"), std::string::npos) << msg;
  EXPECT_EQ(error_of([&] { r.reject_unknown({"lr", "lrr"}); }), "");
}

TEST(Json, IntOrIntList) {
  auto doc = aha::json::parse(R"({"a": 2, "b": [2, 7], "c": "x"})", "t");
  EXPECT_EQ(aha::json::int_or_int_list(doc["a"], "a"), (std::vector<int64_t>{2}));
  EXPECT_EQ(aha::json::int_or_int_list(doc["b"], "b"), (std::vector<int64_t>{2, 7}));
  EXPECT_THROW(aha::json::int_or_int_list(doc["c"], "c"), aha::Error);
}

}  // namespace

// jcs_test.cc — RFC 8785 (JSON Canonicalization Scheme) output of cairn::Json:
// the RFC's own examples, ECMAScript number formatting checked against V8,
// escaping, key order by UTF-16 code units, equality and round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

#include "model/json.h"
#include "model/json_parse.h"

namespace cairn {
namespace {

double from_bits(std::uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

std::uint64_t to_bits(double d) {
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

std::string number(double d) {
  std::string out;
  append_json_number(out, d);
  return out;
}

struct NumberCase {
  std::uint64_t bits;
  const char* expected;
};

// RFC 8785 Appendix B: IEEE-754 bit pattern → canonical text.
// (NaN and Infinity are not JSON numbers; Json(double) asserts finiteness.)
constexpr NumberCase kRfc8785AppendixB[] = {
    {0x0000000000000000, "0"},                         // zero
    {0x8000000000000000, "0"},                         // minus zero
    {0x0000000000000001, "5e-324"},                    // min pos number
    {0x8000000000000001, "-5e-324"},                   // min neg number
    {0x7fefffffffffffff, "1.7976931348623157e+308"},   // max pos number
    {0xffefffffffffffff, "-1.7976931348623157e+308"},  // max neg number
    {0x4340000000000000, "9007199254740992"},          // max pos int
    {0xc340000000000000, "-9007199254740992"},         // max neg int
    {0x4430000000000000, "295147905179352830000"},     // ~2**68
    {0x44b52d02c7e14af5, "9.999999999999997e+22"},
    {0x44b52d02c7e14af6, "1e+23"},
    {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
    {0x444b1ae4d6e2ef4e, "999999999999999700000"},
    {0x444b1ae4d6e2ef4f, "999999999999999900000"},
    {0x444b1ae4d6e2ef50, "1e+21"},
    {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
    {0x3eb0c6f7a0b5ed8d, "0.000001"},
    {0x41b3de4355555553, "333333333.3333332"},
    {0x41b3de4355555554, "333333333.33333325"},
    {0x41b3de4355555555, "333333333.3333333"},
    {0x41b3de4355555556, "333333333.3333334"},
    {0x41b3de4355555557, "333333333.33333343"},
    {0xbecbf647612f3696, "-0.0000033333333333333333"},
    {0x43143ff3c1cb0959, "1424953923781206.2"},  // round to even
};

TEST(JcsNumber, Rfc8785AppendixB) {
  for (const NumberCase& c : kRfc8785AppendixB) {
    EXPECT_EQ(number(from_bits(c.bits)), c.expected) << std::hex << c.bits;
  }
}

// Number.prototype.toString as printed by V8 (node) for pseudo-random bit
// patterns, values around the fixed/exponent boundaries and a few classics.
constexpr NumberCase kV8ToString[] = {
    {0xdc1b77ae0bf34dad, "-4.9911105725155504e+135"},
    {0x64f0eeb9026e6076, "1.715373926431966e+178"},
    {0x7b07ce91e5906136, "4.4251604027143375e+284"},
    {0x305f050c368dcc74, "1.0715660391465826e-75"},
    {0x2ceb16e0a1c54aec, "2.5973481493288907e-92"},
    {0x97101dce4e7bfb79, "-1.3475090132806154e-197"},
    {0x9ad2e144d6e8f2cf, "-1.81996730402717e-179"},
    {0xd9aa792e1af470ea, "-8.750186241947517e+123"},
    {0xddaa4e85b0d6e28b, "-1.603964615428183e+143"},
    {0x8f8ea9d349428d8e, "-9.643915712060552e-234"},
    {0x08f474ffb8e8ab15, "1.5860846119992697e-265"},
    {0x2ead854756d71f03, "7.597954524892738e-84"},
    {0x55bc79f8ada711fd, "1.0204796945730538e+105"},
    {0x0e1fc49bd63b809e, "1.1910593176322935e-240"},
    {0xb92199e83f5a101f, "-1.694933913128696e-33"},
    {0xc5765079fc5d43ff, "-4.3162252145519944e+26"},
    {0x353cfc387dfae6b8, "3.0261999441573203e-52"},
    {0xa32edabf5585bd75, "-3.238696681491661e-139"},
    {0xfc5639b16b714b4f, "-8.663725837306241e+290"},
    {0x92fb2dcfc8ae9a19, "-3.0797526843217145e-217"},
    {0x544b0ec76d00616d, "1.15589923121874e+98"},
    {0xbcbb9b7e9a319aef, "-3.831296467316889e-16"},
    {0x0f1a50d59c0aa21a, "6.466053826432699e-236"},
    {0x80ae2120826571de, "-2.1452846540129615e-305"},
    {0x0e1ecd02ed7c0cbd, "1.1547975125429853e-240"},
    {0x0d0981e8c1fa7be4, "7.296267179458751e-246"},
    {0xdc86b3d3cdbdf613, "-5.2803264785067434e+137"},
    {0x6d0844c269e7693f, "1.6732138965686944e+217"},
    {0x3681da7f6993082d, "3.909076791246025e-46"},
    {0x5b928e2c987d857d, "1.3170664051174186e+133"},
    {0x6c716e1e6ced8137, "2.347135155778617e+214"},
    {0xccb870213498f7f5, "-3.92703626520675e+61"},
    {0x9f07b27a78869b5a, "-3.3710794864173703e-159"},
    {0xb0ba91e47f6200ec, "-5.874229071700385e-74"},
    {0xc72b4c36d0db7fed, "-7.086891063466728e+34"},
    {0x35f305b0c0fc9252, "8.134710481112139e-49"},
    {0x7ac78fb373ffbff6, "2.7371952383912e+283"},
    {0x8e39b81de71b7d09, "-3.857101171397437e-240"},
    {0x59a69ba126cd29b3, "7.472552783215012e+123"},
    {0xbfcbffff0cbcbf20, "-0.21874988672197393"},
    {0x3d358ed1ae8e76ff, "7.6589e-14"},
    {0x42d2c9fa799b0000, "82634800000000"},
    {0x3d6c1d464da2340c, "7.990580000000001e-13"},
    {0x4606553024160dfa, "2.21173e+29"},
    {0x4623378706b6a1ab, "7.6126e+29"},
    {0x44e08185a935eea2, "6.23577e+23"},
    {0x4162210680000000, "9504820"},
    {0x3a531e94ddc8e948, "9.65286e-28"},
    {0x4205dc970d000000, "11736900000"},
    {0x40b30b947ae147ae, "4875.58"},
    {0x409b4051eb851eb8, "1744.08"},
    {0x3f00dba676a53782, "0.0000321541"},
    {0x3fc840c8472c0e7c, "0.189477"},
    {0x415a6da280000000, "6928010"},
    {0x3f78bc8a0983b75a, "0.00603918"},
    {0x3dd344a17daa442d, "7.00969e-11"},
    {0x3ebee2b0f2204d64, "0.0000018409200000000002"},
    {0x40bd16b333333333, "7446.7"},
    {0x3e23b88480c8d843, "2.2958e-9"},
    {0x4303df3baf9f0000, "699184000000000"},
    {0x3fa94af195d9f178, "0.0493999"},
    {0x3dc0ede5fb2d6468, "3.07942e-11"},
    {0x4641b0a2da03cf50, "2.80309e+30"},
    {0x4053340b780346dc, "76.8132"},
    {0x3e1096e3da5a8f98, "9.65631e-10"},
    {0x4153cafe00000000, "5188600"},
    {0x3ee256b5ec7b05e2, "0.00000874458"},
    {0x3be564b4ba86b3f1, "3.62418e-20"},
    {0x44e173c606767add, "6.59327e+23"},
    {0x4197a9b3e0000000, "99249400"},
    {0x3fe7f182235b4edb, "0.748231"},
    {0x453e2d5d2ecdfff7, "3.6481999999999997e+25"},
    {0x45525c43e65a4914, "8.87855e+25"},
    {0x44786888e0833886, "7.204070000000001e+21"},
    {0x45e8ab78e736ece5, "6.107949999999999e+28"},
    {0x3e49c62b55d254bf, "1.2002000000000002e-8"},
    {0x3e21f622b91d5f32, "2.0909899999999996e-9"},
    {0x43752a07cccc4300, "95315000000000000"},
    {0x439d88fc17150a40, "532057000000000000"},
    {0x3b41e052ea9177f9, "2.95738e-23"},
    {0x444b1ae4d6e2ef50, "1e+21"},
    {0x3eb0c6f7a0b5ed8d, "0.000001"},
    {0x3e7ad7f29abcaf48, "1e-7"},
    {0x3c36b082c2148b8e, "1.23e-18"},
    {0x3fb999999999999a, "0.1"},
    {0x3fd3333333333334, "0.30000000000000004"},
    {0x3fd5555555555555, "0.3333333333333333"},
    {0x4340000000000001, "9007199254740994"},
    {0x43e0000000000000, "9223372036854776000"},
    {0x4011666666666666, "4.35"},
    {0x7e444ecd0d33972b, "1.7e+300"},
    {0x0000000000000003, "1.5e-323"},
    {0x441ac53a7e04bcda, "123456789012345680000"},
    {0x3eb4b3fd5942cd96, "0.000001234"},
    {0xbe19c511dc3a41df, "-1.5e-9"},
    {0x4059000000000000, "100"},
    {0x4415af1d78b58c40, "100000000000000000000"},
    {0x4454542ba12a337c, "1.5e+21"},
};

TEST(JcsNumber, MatchesEcmaScriptToString) {
  for (const NumberCase& c : kV8ToString) {
    EXPECT_EQ(number(from_bits(c.bits)), c.expected) << std::hex << c.bits;
  }
}

TEST(JcsNumber, FixedAndExponentBoundaries) {
  EXPECT_EQ(number(1e21), "1e+21");
  EXPECT_EQ(number(1e20), "100000000000000000000");
  EXPECT_EQ(number(1.5e20), "150000000000000000000");
  EXPECT_EQ(number(1e-6), "0.000001");
  EXPECT_EQ(number(1.5e-6), "0.0000015");
  EXPECT_EQ(number(1e-7), "1e-7");
  EXPECT_EQ(number(1.25e-7), "1.25e-7");
  EXPECT_EQ(number(0.5), "0.5");
  EXPECT_EQ(number(-0.5), "-0.5");
  EXPECT_EQ(number(123.456), "123.456");
  EXPECT_EQ(number(1e100), "1e+100");
  EXPECT_EQ(number(-1e-100), "-1e-100");
  EXPECT_EQ(number(4.5), "4.5");
  EXPECT_EQ(number(2e-3), "0.002");
  EXPECT_EQ(number(1e30), "1e+30");
  EXPECT_EQ(number(-0.0), "0");
  EXPECT_EQ(number(42), "42");
  EXPECT_EQ(number(-42), "-42");
  EXPECT_EQ(number(Json::kMaxSafeInteger), "9007199254740991");
  EXPECT_EQ(number(-Json::kMaxSafeInteger), "-9007199254740991");
}

TEST(JcsNumber, ShortestDigitsRoundTripThroughTheParser) {
  std::mt19937_64 rng(20240611);
  for (int i = 0; i < 20000; ++i) {
    double d = from_bits(rng());
    if (!std::isfinite(d)) continue;
    const std::string text = number(d);
    Result<Json> parsed = parse_json(text);
    ASSERT_TRUE(parsed.ok()) << text << " " << parsed.status().to_string();
    const double back = parsed->as_number();
    if (d == 0) {
      EXPECT_EQ(back, 0.0) << text;
    } else {
      EXPECT_EQ(to_bits(back), to_bits(d)) << text;
    }
  }
}

// RFC 8785 §3.2.2 (the example of §3.2.4): literals, numbers and string escapes.
TEST(Jcs, Rfc8785Section322Example) {
  const char* input =
      "{\n"
      "  \"numbers\": [333333333.33333329, 1E30, 4.50,\n"
      "              2e-3, 0.000000000000000000000000001],\n"
      "  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n"
      "  \"literals\": [null, true, false]\n"
      "}";
  Result<Json> v = parse_json(input);
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  const std::string expected =
      "{\"literals\":[null,true,false],"
      "\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
      "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
  EXPECT_EQ(to_jcs(*v), expected);
  // The canonical form is a fixed point.
  Result<Json> again = parse_json(expected);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(to_jcs(*again), expected);
  EXPECT_EQ(*again, *v);
}

// RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their keys.
TEST(Jcs, Rfc8785Section323SortingExample) {
  const char* input =
      "{\n"
      "  \"\\u20ac\": \"Euro Sign\",\n"
      "  \"\\r\": \"Carriage Return\",\n"
      "  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n"
      "  \"1\": \"One\",\n"
      "  \"\\ud83d\\ude00\": \"Emoji: Grinning Face\",\n"
      "  \"\\u0080\": \"Control\",\n"
      "  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\"\n"
      "}";
  Result<Json> v = parse_json(input);
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  const std::string expected =
      "{\"\\r\":\"Carriage Return\","
      "\"1\":\"One\","
      "\"\xc2\x80\":\"Control\","
      "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\","
      "\"\xe2\x82\xac\":\"Euro Sign\","
      "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\","
      "\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}";
  EXPECT_EQ(to_jcs(*v), expected);
}

TEST(Jcs, SupplementaryPlaneSortsBelowPrivateUseAndSpecials) {
  // Bytewise UTF-8 (code point) order would put U+E000 and U+FFFF first.
  Json o = Json::object();
  o.set("\xef\xbf\xbf", 1);       // U+FFFF
  o.set("\xee\x80\x80", 2);       // U+E000
  o.set("\xf0\x90\x80\x80", 3);   // U+10000
  o.set("\xf4\x8f\xbf\xbf", 4);   // U+10FFFF
  o.set("\xed\x9f\xbf", 5);       // U+D7FF
  o.set("a\xf0\x90\x80\x80", 6);  // shared prefix, then supplementary
  o.set("a\xee\x80\x80", 7);      // shared prefix, then U+E000
  o.set("a", 8);
  EXPECT_EQ(to_jcs(o),
            "{\"a\":8,\"a\xf0\x90\x80\x80\":6,\"a\xee\x80\x80\":7,"
            "\"\xed\x9f\xbf\":5,\"\xf0\x90\x80\x80\":3,\"\xf4\x8f\xbf\xbf\":4,"
            "\"\xee\x80\x80\":2,\"\xef\xbf\xbf\":1}");
}

TEST(Jcs, SortIsByCodeUnitsNotLength) {
  Json o = Json::object();
  o.set("b", 1);
  o.set("ab", 2);
  o.set("a", 3);
  o.set("", 4);
  o.set("B", 5);
  EXPECT_EQ(to_jcs(o), "{\"\":4,\"B\":5,\"a\":3,\"ab\":2,\"b\":1}");
  // Insertion order is kept by the compact writer.
  EXPECT_EQ(to_json(o), "{\"b\":1,\"ab\":2,\"a\":3,\"\":4,\"B\":5}");
}

TEST(Jcs, NestedObjectsAreSortedToo) {
  Json inner = Json::object();
  inner.set("z", true);
  inner.set("y", nullptr);
  Json o = Json::object();
  o.set("list", Json(JsonArray{Json(inner), Json(1.5), Json("s")}));
  o.set("inner", inner);
  EXPECT_EQ(to_jcs(o),
            "{\"inner\":{\"y\":null,\"z\":true},\"list\":[{\"y\":null,\"z\":true},1.5,\"s\"]}");
  EXPECT_EQ(to_json(o),
            "{\"list\":[{\"z\":true,\"y\":null},1.5,\"s\"],\"inner\":{\"z\":true,\"y\":null}}");
}

TEST(JcsString, Escapes) {
  auto str = [](std::string_view s) {
    std::string out;
    append_json_string(out, s);
    return out;
  };
  EXPECT_EQ(str(""), "\"\"");
  EXPECT_EQ(str("plain"), "\"plain\"");
  EXPECT_EQ(str("\"\\"), "\"\\\"\\\\\"");
  EXPECT_EQ(str("\b\t\n\f\r"), "\"\\b\\t\\n\\f\\r\"");
  EXPECT_EQ(str(std::string_view("\0", 1)), "\"\\u0000\"");
  EXPECT_EQ(str("\x01\x0b\x0e\x1f"), "\"\\u0001\\u000b\\u000e\\u001f\"");
  EXPECT_EQ(str("\x7f"), "\"\x7f\"");                                          // DEL is not escaped
  EXPECT_EQ(str("/"), "\"/\"");                                                // nor is the solidus
  EXPECT_EQ(str("\xe2\x80\xa8\xe2\x80\xa9"), "\"\xe2\x80\xa8\xe2\x80\xa9\"");  // U+2028/9 literal
  EXPECT_EQ(str("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");
  EXPECT_EQ(str("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
}

TEST(JcsString, EveryControlCharacter) {
  for (int c = 0; c < 0x20; ++c) {
    const std::string s(1, static_cast<char>(c));
    std::string out;
    append_json_string(out, s);
    Result<Json> back = parse_json(out);
    ASSERT_TRUE(back.ok()) << out;
    EXPECT_EQ(back->as_string(), s);
    EXPECT_TRUE(out.size() == 4 || out.size() == 8) << out;
  }
}

TEST(Utf8, Validation) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("hello, world; long enough for the fast path"));
  EXPECT_TRUE(is_valid_utf8(std::string_view("\0", 1)));
  EXPECT_TRUE(is_valid_utf8("\xc2\x80"));          // U+0080
  EXPECT_TRUE(is_valid_utf8("\xdf\xbf"));          // U+07FF
  EXPECT_TRUE(is_valid_utf8("\xe0\xa0\x80"));      // U+0800
  EXPECT_TRUE(is_valid_utf8("\xed\x9f\xbf"));      // U+D7FF
  EXPECT_TRUE(is_valid_utf8("\xee\x80\x80"));      // U+E000
  EXPECT_TRUE(is_valid_utf8("\xef\xbf\xbf"));      // U+FFFF
  EXPECT_TRUE(is_valid_utf8("\xf0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(is_valid_utf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\x80"));             // lone continuation
  EXPECT_FALSE(is_valid_utf8("\xbf"));
  EXPECT_FALSE(is_valid_utf8("\xc0\x80"));                  // overlong NUL
  EXPECT_FALSE(is_valid_utf8("\xc1\xbf"));                  // overlong
  EXPECT_FALSE(is_valid_utf8("\xe0\x9f\xbf"));              // overlong U+07FF
  EXPECT_FALSE(is_valid_utf8("\xf0\x8f\xbf\xbf"));          // overlong U+FFFF
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));              // U+D800
  EXPECT_FALSE(is_valid_utf8("\xed\xbf\xbf"));              // U+DFFF
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\xbd\xed\xb8\x80"));  // CESU-8 surrogate pair
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));          // U+110000
  EXPECT_FALSE(is_valid_utf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xff"));
  EXPECT_FALSE(is_valid_utf8("\xfe"));
  EXPECT_FALSE(is_valid_utf8("\xc2"));  // truncated
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));
  EXPECT_FALSE(is_valid_utf8("\xf0\x9f\x98"));
  EXPECT_FALSE(is_valid_utf8("\xe2\x28\xa1"));              // bad continuation
  EXPECT_FALSE(is_valid_utf8("abcdefgh\x80"));              // after the fast path
  EXPECT_FALSE(is_valid_utf8("\xfc\x83\xbf\xbf\xbf\xbf"));  // 6-byte form
}

TEST(Utf8, AgreesWithADecoderOnEveryCodePoint) {
  for (std::uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x3000 ? 1 : 7)) {
    std::string s;
    if (cp < 0x80) {
      s.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      s.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
    const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    EXPECT_EQ(is_valid_utf8(s), !surrogate) << std::hex << cp;
  }
}

TEST(JsonValue, Accessors) {
  Json o = Json::object();
  EXPECT_TRUE(o.is_object());
  EXPECT_EQ(o.size(), 0u);
  o.set("n", 3);
  o.set("s", "text");
  o.set("b", false);
  o.set("a", Json::array());
  o.find("a")->push_back(Json(1.5));
  o.set("n", 4);  // replaces in place
  EXPECT_EQ(o.size(), 4u);
  EXPECT_EQ(to_json(o), "{\"n\":4,\"s\":\"text\",\"b\":false,\"a\":[1.5]}");
  EXPECT_EQ(o.find("n")->int_if(), 4);
  EXPECT_EQ(o.find("s")->as_string(), "text");
  EXPECT_EQ(o.find("b")->bool_if(), false);
  EXPECT_EQ(o.find("missing"), nullptr);
  EXPECT_EQ(Json(1).find("x"), nullptr);
  EXPECT_EQ(o.find("s")->number_if(), std::nullopt);
  EXPECT_EQ(o.find("a")->size(), 1u);
  EXPECT_TRUE(o.erase("s"));
  EXPECT_FALSE(o.erase("s"));
  EXPECT_EQ(to_json(o), "{\"n\":4,\"b\":false,\"a\":[1.5]}");
  EXPECT_EQ(Json().type(), Json::Type::kNull);
  EXPECT_EQ(Json(nullptr).type(), Json::Type::kNull);
  EXPECT_EQ(Json("x").string_if()->size(), 1u);
  EXPECT_EQ(Json(1).string_if(), nullptr);
  EXPECT_EQ(Json(std::int64_t{-7}).as_number(), -7.0);
  EXPECT_EQ(Json(std::uint64_t{7}).as_number(), 7.0);
}

TEST(JsonValue, IntIf) {
  EXPECT_EQ(Json(0).int_if(), 0);
  EXPECT_EQ(Json(-0.0).int_if(), 0);
  EXPECT_EQ(Json(Json::kMaxSafeInteger).int_if(), 9007199254740991);
  EXPECT_EQ(Json(-Json::kMaxSafeInteger).int_if(), -9007199254740991);
  EXPECT_EQ(Json(9007199254740992.0).int_if(), std::nullopt);
  EXPECT_EQ(Json(1e300).int_if(), std::nullopt);
  EXPECT_EQ(Json(1.5).int_if(), std::nullopt);
  EXPECT_EQ(Json("1").int_if(), std::nullopt);
}

TEST(JsonValue, EqualityIgnoresMemberOrder) {
  Json a = Json::object();
  a.set("x", 1);
  a.set("y", Json(JsonArray{Json(1), Json("two")}));
  Json b = Json::object();
  b.set("y", Json(JsonArray{Json(1), Json("two")}));
  b.set("x", 1);
  EXPECT_EQ(a, b);
  EXPECT_EQ(to_jcs(a), to_jcs(b));
  EXPECT_NE(to_json(a), to_json(b));
  b.set("x", 2);
  EXPECT_NE(a, b);
  b.set("x", 1);
  b.set("z", nullptr);
  EXPECT_NE(a, b);
  // Array order matters.
  EXPECT_NE(Json(JsonArray{Json(1), Json(2)}), Json(JsonArray{Json(2), Json(1)}));
  // Types matter: 1 is not "1", null is not false, [] is not {}.
  EXPECT_NE(Json(1), Json("1"));
  EXPECT_NE(Json(), Json(false));
  EXPECT_NE(Json::array(), Json::object());
  // Numbers compare as doubles.
  EXPECT_EQ(Json(0.0), Json(-0.0));
  EXPECT_EQ(Json(1), Json(1.0));
}

TEST(JsonValue, EqualityOfLargeObjectsInAnotherOrder) {
  Json a = Json::object();
  Json b = Json::object();
  for (int i = 0; i < 100; ++i) a.set("k" + std::to_string(i), i);
  for (int i = 99; i >= 0; --i) b.set("k" + std::to_string(i), i);
  EXPECT_EQ(a, b);
  EXPECT_EQ(to_jcs(a), to_jcs(b));
  b.set("k50", -1);
  EXPECT_NE(a, b);
  b.set("k50", 50);
  EXPECT_EQ(a, b);
  b.erase("k7");
  b.set("k7x", 7);
  EXPECT_NE(a, b);
}

TEST(Jcs, RoundTripThroughParser) {
  const char* texts[] = {
      "null",
      "true",
      "[]",
      "{}",
      "\"\"",
      "[1,2.5,-3e-7,\"x\",{\"b\":[],\"a\":{}}]",
      "{\"\xf0\x9f\x98\x80\":1,\"\xef\xac\xb3\":2,\"a\\u0000b\":[null,false]}",
  };
  for (const char* t : texts) {
    Result<Json> v = parse_json(t);
    ASSERT_TRUE(v.ok()) << t;
    const std::string canonical = to_jcs(*v);
    Result<Json> back = parse_json(canonical);
    ASSERT_TRUE(back.ok()) << canonical;
    EXPECT_EQ(*back, *v) << t;
    EXPECT_EQ(to_jcs(*back), canonical);
    const std::string compact = to_json(*v);
    Result<Json> back2 = parse_json(compact);
    ASSERT_TRUE(back2.ok()) << compact;
    EXPECT_EQ(*back2, *v);
  }
}

TEST(Jcs, AppendsToExistingOutput) {
  std::string out = "prefix:";
  append_jcs(out, Json(JsonArray{Json(1), Json("a")}));
  EXPECT_EQ(out, "prefix:[1,\"a\"]");
  append_json(out, Json(true));
  EXPECT_EQ(out, "prefix:[1,\"a\"]true");
}

}  // namespace
}  // namespace cairn

namespace cairn {
namespace {

// The word-at-a-time escaper agrees with a byte-at-a-time reference on
// strings that mix plain text, characters that need escaping, and UTF-8, at
// every alignment.
TEST(JcsStrings, WordAtATimeEscapingMatchesTheByteReference) {
  auto reference = [](std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\r':
          out += "\\r";
          break;
        default:
          if (c < 0x20) {
            static const char* kHex = "0123456789abcdef";
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xF];
          } else {
            out += static_cast<char>(c);
          }
      }
    }
    return out + "\"";
  };
  const std::string_view pieces[] = {"a", "Z", " ", "\"",       "\\", "\x01", "\x1f", "\n",
                                     "é", "€", "😀", "abcdefgh", "/",  "\x7f", "~"};
  std::uint64_t x = 12345;
  for (int round = 0; round < 5000; ++round) {
    std::string s;
    const int n = static_cast<int>(x % 40);
    for (int i = 0; i < n; ++i) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      s += pieces[(x >> 33) % std::size(pieces)];
    }
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    std::string got;
    append_json_string(got, s);
    ASSERT_EQ(got, reference(s)) << "round " << round;
  }
}

}  // namespace
}  // namespace cairn

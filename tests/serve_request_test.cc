// The server's request checks and stop strings, without a model or a socket.
#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "server/completion_request.h"
#include "server/openai_server.h"
#include "server/stop_matcher.h"

namespace ll::server {
namespace {

using nlohmann::json;

std::string fed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  return out;
}

TEST(StopMatcher, EndsBeforeAStopStringSplitAcrossPieces) {
  StopMatcher m({"\nUser:", "END"});
  EXPECT_EQ(fed(m, {"Hello", " there\n", "Us", "er: more"}), "Hello there");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.push("ignored"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, ReleasesAHeldTailThatDidNotBecomeAStopString) {
  StopMatcher m({"END"});
  EXPECT_EQ(m.push("the EN"), "the ");  // "EN" may still become "END"
  EXPECT_EQ(m.push("D"), "");
  EXPECT_TRUE(m.stopped());
  StopMatcher n({"END"});
  EXPECT_EQ(n.push("the EN"), "the ");
  EXPECT_EQ(n.push("TRY"), "ENTRY");
  EXPECT_EQ(n.push("E"), "");
  EXPECT_EQ(n.flush(), "E");
  EXPECT_FALSE(n.stopped());
}

TEST(StopMatcher, TheEarliestOfSeveralStopStringsWins) {
  StopMatcher m({"cd", "b"});
  EXPECT_EQ(m.push("abcd"), "a");
}

TEST(StopMatcher, NoStopStringsPassEverything) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc"), "abc");
  StopMatcher empty({""});
  EXPECT_EQ(empty.push("abc"), "abc");
}

std::variant<CompletionRequest, ApiError> parse(const json& body, bool chat = false) {
  return parse_completion_request(body, chat, RequestLimits{}, 7);
}

ApiError error_of(const json& body, bool chat = false) {
  auto r = parse(body, chat);
  EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body.dump();
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(CompletionRequest, OpenAiDefaultsAndGivenFields) {
  auto r = parse({{"model", "m"}, {"prompt", "Once"}});
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(r));
  const auto& c = std::get<CompletionRequest>(r);
  EXPECT_EQ(c.max_tokens, 16);
  EXPECT_EQ(c.sampling.temp, 1.0f);
  EXPECT_EQ(c.sampling.top_p, 1.0f);
  EXPECT_EQ(c.sampling.top_k, 0);
  EXPECT_EQ(c.sampling.seed, 7u);
  auto chat = parse({{"model", "m"},
                     {"messages", {{{"role", "user"}, {"content", {{{"type", "text"}, {"text", "Hi"}}}}}}},
                     {"max_completion_tokens", 5},
                     {"seed", 42},
                     {"stop", "x"},
                     {"stream", true}},
                    true);
  ASSERT_TRUE(std::holds_alternative<CompletionRequest>(chat));
  const auto& cc = std::get<CompletionRequest>(chat);
  EXPECT_EQ(cc.messages.at(0).content, "Hi");
  EXPECT_EQ(cc.max_tokens, 5);
  EXPECT_EQ(cc.sampling.seed, 42u);
  EXPECT_EQ(cc.stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(cc.stream);
  EXPECT_EQ(std::get<CompletionRequest>(parse({{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "a"}}}}},
                                              true)).max_tokens, -1);
}

TEST(CompletionRequest, EveryBadFieldIsA400NamingIt) {
  EXPECT_EQ(error_of({{"prompt", "Once"}}).param, "model");
  EXPECT_EQ(error_of({{"model", "m"}}).param, "prompt");
  EXPECT_EQ(error_of({{"model", "m"}, {"prompt", 3}}).param, "prompt");
  EXPECT_EQ(error_of({{"model", "m"}, {"prompt", "a"}, {"max_tokens", 0}}).param, "max_tokens");
  EXPECT_EQ(error_of({{"model", "m"}, {"prompt", "a"}, {"max_tokens", 1.5}}).param, "max_tokens");
  EXPECT_EQ(error_of({{"model", "m"}, {"prompt", "a"}, {"temperature", 3}}).param, "temperature");
  EXPECT_EQ(error_of({{"model", "m"}, {"prompt", "a"}, {"top_p", -0.1}}).param, "top_p");
  EXPECT_EQ(error_of({{"model", "m"}, {"prompt", "a"}, {"stop", {"a", "b", "c", "d", "e"}}}).param, "stop");
  EXPECT_EQ(error_of({{"model", "m"}, {"prompt", "a"}, {"n", 2}}).param, "n");
  EXPECT_EQ(error_of({{"model", "m"}, {"prompt", "a"}, {"logprobs", 3}}).param, "logprobs");
  EXPECT_EQ(error_of({{"model", "m"}, {"messages", json::array()}}, true).param, "messages");
  EXPECT_EQ(error_of({{"model", "m"}, {"messages", {{{"role", "tool"}, {"content", "x"}}}}}, true).param, "messages");
  EXPECT_EQ(error_of(json::array()).status, 400);
  json many = json::array();
  for (int i = 0; i < 257; ++i) many.push_back({{"role", "user"}, {"content", "x"}});
  EXPECT_EQ(error_of({{"model", "m"}, {"messages", many}}, true).param, "messages");
  EXPECT_EQ(error_of({{"model", "m"}, {"prompt", std::string((1 << 20) + 1, 'a')}}).param, "prompt");
  const json shape = error_of({{"model", "m"}}).to_json();
  EXPECT_EQ(shape["error"]["type"], "invalid_request_error");
  EXPECT_EQ(shape["error"]["param"], "prompt");
  EXPECT_TRUE(shape["error"]["code"].is_null());
}

TEST(ServerOptions, AnAddressBeyondLoopbackNeedsAKey) {
  EXPECT_TRUE(is_loopback_host("127.0.0.1"));
  EXPECT_TRUE(is_loopback_host("127.3.2.1"));
  EXPECT_TRUE(is_loopback_host("::1"));
  EXPECT_TRUE(is_loopback_host("localhost"));
  EXPECT_FALSE(is_loopback_host("0.0.0.0"));
  EXPECT_FALSE(is_loopback_host("192.168.1.2"));
  ServerOptions o;
  o.host = "0.0.0.0";
  EXPECT_FALSE(check_server_options(o).ok());
  o.api_key = "k";
  EXPECT_TRUE(check_server_options(o).ok());
}

}  // namespace
}  // namespace ll::server

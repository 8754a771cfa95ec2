// The timeline's JSON (every field as written) and its SVG chart (well-formed, labelled).
#include "cluster/timeline.h"

#include <gtest/gtest.h>

#include <cctype>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "test_data.h"

namespace ll::cluster {
namespace {

// Two workers, two requests at 10 tokens/s each for 3 s, a rebalance at 1.5 s, one given up at
// 2.5 s and a speed change at 1 s. A worker name with XML's special characters.
RunTrace sample_trace() {
  RunTrace trace;
  trace.worker_names = {"alpha", "beta<&>"};
  for (int k = 1; k <= 30; ++k) {
    for (size_t request = 0; request < 2; ++request) {
      const double seconds = k / 10.0 + request * 0.05;
      const size_t first = seconds < 1.5 ? 0 : 1;
      trace.tokens.push_back(
          {seconds, request, {{first, 0.004 + 0.001 * request, 0.0002}, {1 - first, 0.012, 0.0003 * k}}});
    }
  }
  trace.rebalances.push_back({.detected_seconds = 1.1,
                              .decided_seconds = 1.2,
                              .switched_seconds = 1.5,
                              .stall_seconds = 0.045,
                              .predicted_gain = 0.31,
                              .before = {{0, 12}, {12, 20}},
                              .after = {{12, 20}, {0, 12}},
                              .weight_bytes = 123456789,
                              .kv_bytes = 4096,
                              .summary = "attn[0]..ffn[5] alpha -> beta",
                              .aborted = false,
                              .why = "alpha is 3.0x slower"});
  trace.rebalances.push_back({.detected_seconds = 2.2,
                              .decided_seconds = 2.3,
                              .switched_seconds = 2.5,
                              .stall_seconds = 0,
                              .predicted_gain = 0.12,
                              .before = {{12, 20}, {0, 12}},
                              .after = {{0, 20}, {}},
                              .weight_bytes = 0,
                              .kv_bytes = 0,
                              .summary = "head beta -> alpha",
                              .aborted = true,
                              .why = "worker busy"});
  trace.marks.push_back({1.0, "alpha: cpu 0.15"});
  trace.recoveries.push_back({.worker = 1,
                              .why = "connection lost (heartbeat timeout)",
                              .last_heard_seconds = 1.6,
                              .detected_seconds = 1.75,
                              .planned_seconds = 1.8,
                              .loaded_seconds = 1.9,
                              .resumed_seconds = 2.0,
                              .before = {{12, 20}, {0, 12}},
                              .after = {{0, 20}, {}},
                              .summary = "attn[0]..ffn[5] beta -> alpha",
                              .sequences = 2,
                              .replayed_tokens = 77,
                              .failed = false,
                              .error = ""});
  trace.recoveries.push_back({.worker = 0,
                              .why = "connection lost (heartbeat timeout)",
                              .last_heard_seconds = 2.6,
                              .detected_seconds = 2.7,
                              .planned_seconds = 2.7,
                              .loaded_seconds = 0,
                              .resumed_seconds = 0,
                              .before = {{0, 20}, {}},
                              .after = {},
                              .summary = "",
                              .sequences = 0,
                              .replayed_tokens = 0,
                              .failed = true,
                              .error = "the surviving workers (beta) cannot hold the model"});
  trace.rejoins.push_back({1, 2.2});
  return trace;
}

// Why `xml` is not well-formed XML, or "" when it is: one root element, every tag closed in
// order, attributes quoted and not repeated, '<' and '&' only as markup or entities.
std::string xml_problem(const std::string& xml) {
  auto name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':';
  };
  auto text_problem = [](const std::string& text) -> std::string {
    for (size_t i = text.find('&'); i != std::string::npos; i = text.find('&', i + 1)) {
      static const char* kEntities[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
      bool known = false;
      for (const char* e : kEntities) known |= text.compare(i, std::string(e).size(), e) == 0;
      if (!known) return "a bare '&' in \"" + text + "\"";
    }
    return text.find('<') == std::string::npos ? "" : "a '<' in \"" + text + "\"";
  };
  std::vector<std::string> open;
  size_t roots = 0, pos = 0;
  while (pos < xml.size()) {
    const size_t lt = xml.find('<', pos);
    const std::string text = xml.substr(pos, lt == std::string::npos ? std::string::npos : lt - pos);
    if (auto p = text_problem(text); !p.empty()) return p;
    if (open.empty() && text.find_first_not_of(" \n\t\r") != std::string::npos) return "text outside the root";
    if (lt == std::string::npos) break;
    pos = lt + 1;
    const bool closing = pos < xml.size() && xml[pos] == '/';
    if (closing) ++pos;
    size_t end = pos;
    while (end < xml.size() && name_char(xml[end])) ++end;
    const std::string name = xml.substr(pos, end - pos);
    if (name.empty()) return "a tag without a name at " + std::to_string(lt);
    pos = end;
    if (closing) {
      if (open.empty() || open.back() != name) return "</" + name + "> closes nothing open";
      open.pop_back();
      if (pos >= xml.size() || xml[pos] != '>') return "</" + name + " is not closed with '>'";
      ++pos;
      continue;
    }
    if (open.empty() && roots++ > 0) return "a second root <" + name + ">";
    std::set<std::string> attributes;
    while (true) {
      while (pos < xml.size() && std::isspace(static_cast<unsigned char>(xml[pos]))) ++pos;
      if (xml.compare(pos, 2, "/>") == 0) {
        pos += 2;
        break;
      }
      if (pos < xml.size() && xml[pos] == '>') {
        open.push_back(name);
        ++pos;
        break;
      }
      size_t a = pos;
      while (a < xml.size() && name_char(xml[a])) ++a;
      const std::string attribute = xml.substr(pos, a - pos);
      if (attribute.empty() || xml.compare(a, 2, "=\"") != 0) return "a malformed attribute in <" + name + ">";
      if (!attributes.insert(attribute).second) return "attribute " + attribute + " twice in <" + name + ">";
      const size_t quote = xml.find('"', a + 2);
      if (quote == std::string::npos) return "an unterminated attribute in <" + name + ">";
      if (auto p = text_problem(xml.substr(a + 2, quote - a - 2)); !p.empty()) return p;
      pos = quote + 1;
    }
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  return roots == 1 ? "" : "no root element";
}

TEST(XmlCheck, FindsTheFaultsItLooksFor) {
  EXPECT_EQ(xml_problem("<a x=\"1\"><b/>t &amp; u</a>\n"), "");
  EXPECT_NE(xml_problem("<a><b></a></b>"), "");
  EXPECT_NE(xml_problem("<a>x & y</a>"), "");
  EXPECT_NE(xml_problem("<a x=\"1\" x=\"2\"/>"), "");
  EXPECT_NE(xml_problem("<a x=1/>"), "");
  EXPECT_NE(xml_problem("<a/><b/>"), "");
  EXPECT_NE(xml_problem("<a>"), "");
  EXPECT_NE(xml_problem("<a y=\"<\"/>"), "");
}

TEST(Timeline, RateBinsCountAllRequestsAndFoldASliverIntoTheBinBefore) {
  RunTrace trace;
  for (int k = 1; k <= 20; ++k) trace.tokens.push_back({k / 10.0, 0, {}});
  const auto bins = rate_bins(trace, 0.5);
  ASSERT_EQ(bins.size(), 4u);  // [2.0, 2.0] is a sliver: its token joins [1.5, 2.0)
  const size_t tokens[] = {4, 5, 5, 6};
  for (size_t b = 0; b < 4; ++b) {
    EXPECT_DOUBLE_EQ(bins[b].begin_seconds, 0.5 * b);
    EXPECT_DOUBLE_EQ(bins[b].end_seconds, 0.5 * (b + 1));
    EXPECT_EQ(bins[b].tokens, tokens[b]);
    EXPECT_DOUBLE_EQ(bins[b].tokens_per_second, tokens[b] / 0.5);
  }
  EXPECT_TRUE(rate_bins(RunTrace{}, 0.5).empty());
}

TEST(Timeline, ChartPathReplacesJsonOrAppendsSvg) {
  EXPECT_EQ(timeline_svg_path("out/run.json"), "out/run.svg");
  EXPECT_EQ(timeline_svg_path("out/run"), "out/run.svg");
  EXPECT_EQ(timeline_svg_path("run.txt"), "run.txt.svg");
  EXPECT_EQ(timeline_svg_path(".json"), ".json.svg");
}

TEST(Timeline, JsonHoldsEveryField) {
  const RunTrace trace = sample_trace();
  const std::string path = test::temp_path("timeline.json");
  ASSERT_TRUE(write_timeline(trace, path).ok());
  std::string text;
  ASSERT_NO_FATAL_FAILURE(text = test::read_text(path));
  const auto j = nlohmann::json::parse(text);

  EXPECT_EQ(j.at("workers").get<std::vector<std::string>>(), trace.worker_names);
  ASSERT_EQ(j.at("tokens").size(), trace.tokens.size());
  for (size_t i = 0; i < trace.tokens.size(); ++i) {
    const auto& t = trace.tokens[i];
    const auto& jt = j["tokens"][i];
    EXPECT_EQ(jt.at("seconds").get<double>(), t.seconds);
    EXPECT_EQ(jt.at("request").get<size_t>(), t.request);
    ASSERT_EQ(jt.at("stages").size(), t.stages.size());
    for (size_t s = 0; s < t.stages.size(); ++s) {
      EXPECT_EQ(jt["stages"][s].at("worker").get<size_t>(), t.stages[s].worker);
      EXPECT_EQ(jt["stages"][s].at("compute_seconds").get<double>(), t.stages[s].compute_seconds);
      EXPECT_EQ(jt["stages"][s].at("send_seconds").get<double>(), t.stages[s].send_seconds);
    }
  }

  ASSERT_EQ(j.at("rebalances").size(), trace.rebalances.size());
  for (size_t i = 0; i < trace.rebalances.size(); ++i) {
    const auto& r = trace.rebalances[i];
    const auto& jr = j["rebalances"][i];
    EXPECT_EQ(jr.at("detected_seconds").get<double>(), r.detected_seconds);
    EXPECT_EQ(jr.at("decided_seconds").get<double>(), r.decided_seconds);
    EXPECT_EQ(jr.at("switched_seconds").get<double>(), r.switched_seconds);
    EXPECT_EQ(jr.at("stall_seconds").get<double>(), r.stall_seconds);
    EXPECT_EQ(jr.at("predicted_gain").get<double>(), r.predicted_gain);
    for (const auto& [name, ranges] : {std::pair{"before", &r.before}, std::pair{"after", &r.after}}) {
      ASSERT_EQ(jr.at(name).size(), ranges->size()) << name;
      for (size_t w = 0; w < ranges->size(); ++w) {
        EXPECT_EQ(jr[name][w], nlohmann::json::array({(*ranges)[w].begin, (*ranges)[w].end})) << name << " " << w;
      }
    }
    EXPECT_EQ(jr.at("weight_bytes").get<uint64_t>(), r.weight_bytes);
    EXPECT_EQ(jr.at("kv_bytes").get<uint64_t>(), r.kv_bytes);
    EXPECT_EQ(jr.at("summary").get<std::string>(), r.summary);
    EXPECT_EQ(jr.at("aborted").get<bool>(), r.aborted);
    EXPECT_EQ(jr.at("why").get<std::string>(), r.why);
  }

  ASSERT_EQ(j.at("recoveries").size(), trace.recoveries.size());
  for (size_t i = 0; i < trace.recoveries.size(); ++i) {
    const auto& r = trace.recoveries[i];
    const auto& jr = j["recoveries"][i];
    EXPECT_EQ(jr.at("worker").get<size_t>(), r.worker);
    EXPECT_EQ(jr.at("why").get<std::string>(), r.why);
    EXPECT_EQ(jr.at("last_heard_seconds").get<double>(), r.last_heard_seconds);
    EXPECT_EQ(jr.at("detected_seconds").get<double>(), r.detected_seconds);
    EXPECT_EQ(jr.at("planned_seconds").get<double>(), r.planned_seconds);
    EXPECT_EQ(jr.at("loaded_seconds").get<double>(), r.loaded_seconds);
    EXPECT_EQ(jr.at("resumed_seconds").get<double>(), r.resumed_seconds);
    for (const auto& [name, ranges] : {std::pair{"before", &r.before}, std::pair{"after", &r.after}}) {
      ASSERT_EQ(jr.at(name).size(), ranges->size()) << name;
      for (size_t w = 0; w < ranges->size(); ++w) {
        EXPECT_EQ(jr[name][w], nlohmann::json::array({(*ranges)[w].begin, (*ranges)[w].end})) << name << " " << w;
      }
    }
    EXPECT_EQ(jr.at("summary").get<std::string>(), r.summary);
    EXPECT_EQ(jr.at("sequences").get<size_t>(), r.sequences);
    EXPECT_EQ(jr.at("replayed_tokens").get<uint64_t>(), r.replayed_tokens);
    EXPECT_EQ(jr.at("failed").get<bool>(), r.failed);
    EXPECT_EQ(jr.at("error").get<std::string>(), r.error);
  }
  ASSERT_EQ(j.at("rejoins").size(), 1u);
  EXPECT_EQ(j["rejoins"][0].at("worker").get<size_t>(), 1u);
  EXPECT_EQ(j["rejoins"][0].at("seconds").get<double>(), 2.2);

  ASSERT_EQ(j.at("marks").size(), 1u);
  EXPECT_EQ(j["marks"][0].at("seconds").get<double>(), 1.0);
  EXPECT_EQ(j["marks"][0].at("label").get<std::string>(), "alpha: cpu 0.15");

  EXPECT_EQ(j.at("bin_seconds").get<double>(), kTimelineBinSeconds);
  const auto bins = rate_bins(trace, kTimelineBinSeconds);
  ASSERT_EQ(j.at("tokens_per_second").size(), bins.size());
  size_t total = 0;
  for (size_t b = 0; b < bins.size(); ++b) {
    const auto& jb = j["tokens_per_second"][b];
    EXPECT_EQ(jb.at("begin_seconds").get<double>(), bins[b].begin_seconds);
    EXPECT_EQ(jb.at("end_seconds").get<double>(), bins[b].end_seconds);
    EXPECT_EQ(jb.at("tokens").get<size_t>(), bins[b].tokens);
    EXPECT_EQ(jb.at("tokens_per_second").get<double>(), bins[b].tokens_per_second);
    total += bins[b].tokens;
  }
  EXPECT_EQ(total, trace.tokens.size());
  // Two requests at 10 tokens/s each: 20 tokens/s in a full bin of the steady part.
  EXPECT_DOUBLE_EQ(j["tokens_per_second"][2].at("tokens_per_second").get<double>(), 20.0);
}

// The <g> element holding `label`, or "" when there is none.
std::string group_with(const std::string& svg, const std::string& label) {
  const size_t at = svg.find(label);
  if (at == std::string::npos) return "";
  const size_t begin = svg.rfind("<g>", at), end = svg.find("</g>", at);
  return begin == std::string::npos || end == std::string::npos ? "" : svg.substr(begin, end - begin);
}

TEST(Timeline, ChartIsWellFormedAndLabelled) {
  const RunTrace trace = sample_trace();
  const std::string path = test::temp_path("timeline_chart");
  ASSERT_TRUE(write_timeline(trace, path).ok());
  std::string svg;
  ASSERT_NO_FATAL_FAILURE(svg = test::read_text(path + ".svg"));
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);

  EXPECT_NE(svg.find(">alpha</text>"), std::string::npos);
  EXPECT_NE(svg.find(">beta&lt;&amp;&gt;</text>"), std::string::npos);
  // One line per worker in the compute panel.
  EXPECT_NE(svg.find("<title>alpha: compute ms per token</title>"), std::string::npos);
  EXPECT_NE(svg.find("<title>beta&lt;&amp;&gt;: compute ms per token</title>"), std::string::npos);

  const std::string switched = group_with(svg, ">attn[0]..ffn[5] alpha -&gt; beta, stall 45 ms</text>");
  ASSERT_NE(switched, "");
  EXPECT_EQ(switched.find("stroke-dasharray"), std::string::npos);
  EXPECT_NE(switched.find("alpha is 3.0x slower"), std::string::npos);  // the reason, on hover

  const std::string aborted = group_with(svg, ">aborted: head beta -&gt; alpha</text>");
  ASSERT_NE(aborted, "");
  EXPECT_NE(aborted.find("stroke-dasharray"), std::string::npos);
  EXPECT_NE(aborted.find("stroke=\"#999\""), std::string::npos);
  EXPECT_NE(aborted.find("worker busy"), std::string::npos);

  const std::string recovered = group_with(svg, ">beta&lt;&amp;&gt; lost: resumed in 250 ms</text>");
  ASSERT_NE(recovered, "");
  EXPECT_EQ(recovered.find("stroke-dasharray"), std::string::npos);
  EXPECT_NE(recovered.find("77 token(s) replayed"), std::string::npos);
  const std::string failed = group_with(svg, ">alpha lost: failed</text>");
  ASSERT_NE(failed, "");
  EXPECT_NE(failed.find("stroke-dasharray=\"5,4\""), std::string::npos);
  EXPECT_NE(failed.find("cannot hold the model"), std::string::npos);
  const std::string rejoined = group_with(svg, ">beta&lt;&amp;&gt; rejoined</text>");
  ASSERT_NE(rejoined, "");
  EXPECT_NE(rejoined.find("stroke-dasharray=\"2,3\""), std::string::npos);

  const std::string mark = group_with(svg, ">alpha: cpu 0.15</text>");
  ASSERT_NE(mark, "");
  EXPECT_NE(mark.find("stroke-dasharray"), std::string::npos);
}

TEST(Timeline, EmptyTraceStillDrawsAWellFormedChart) {
  const std::string svg = timeline_svg(RunTrace{});
  EXPECT_EQ(xml_problem(svg), "");
  EXPECT_NE(svg.find("no tokens"), std::string::npos);
}

TEST(Timeline, UnwritablePathIsAnError) {
  const Status s = write_timeline(sample_trace(), "/nonexistent-folder/run.json");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot write the timeline file /nonexistent-folder/run.json"), std::string::npos);
}

}  // namespace
}  // namespace ll::cluster

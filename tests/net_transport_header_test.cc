// net/transport.h needs no protobuf: it only declares the Envelope, and the code that builds or
// reads envelopes includes the wire contract itself. This file includes nothing else of ours.
#include "net/transport.h"

#ifdef GOOGLE_PROTOBUF_VERSION
#error "net/transport.h includes protobuf"
#endif

#include <gtest/gtest.h>

#include <utility>

namespace ll::net {
namespace {

TEST(NetTransportHeader, MovingAMessageMovesItsEnvelopeAndFrames) {
  Message m;
  m.frames.emplace_back(size_t{16});
  const wire::Envelope* envelope = &m.envelope();

  Message moved(std::move(m));
  EXPECT_EQ(&moved.envelope(), envelope);
  ASSERT_EQ(moved.frames.size(), 1u);
  EXPECT_EQ(moved.frames[0].size(), 16u);

  Message assigned;
  assigned = std::move(moved);
  EXPECT_EQ(&assigned.envelope(), envelope);
  EXPECT_EQ(assigned.frames.size(), 1u);
}

}  // namespace
}  // namespace ll::net

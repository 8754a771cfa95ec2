#pragma once
// A Head as an exec::ScoreSequences: the sequences scored together, one run of several sequences
// pipelined across the workers (Head::score); the first sequence's error ends the call.
#include "cluster/head.h"
#include "exec/score.h"

namespace ll::cluster {

// `head` must outlive the scorer.
exec::ScoreSequences score_on_head(Head& head);

}  // namespace ll::cluster

#pragma once
// How a hidden state crosses a link between two stages: F32 as computed, or rounded to F16 or
// BF16, half the bytes for slow links at the price of the rounding (llama.cpp's RPC backend
// sends F32). The receiver widens it back to F32 before its segment runs.
#include <zmq.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "wire.pb.h"

namespace ll::cluster {

// "f32", "f16", "bf16"; nullopt for anything else.
std::optional<wire::ActivationType> parse_activation_type(std::string_view name);
std::string activation_type_name(wire::ActivationType type);
// Bytes per value; 0 for a value outside the enum (a hostile or newer peer).
uint64_t activation_bytes(int type);

// The frame of `count` floats in `type`: `hidden` itself (F32), or a new frame of the rounded values.
zmq::message_t encode_activations(zmq::message_t hidden, int64_t count, wire::ActivationType type);
// The received frame as F32 floats, aligned for the executor (a copy where needed). `frame`
// holds count * activation_bytes(type) bytes (validate_step checked it).
zmq::message_t decode_activations(zmq::message_t frame, int64_t count, wire::ActivationType type);

}  // namespace ll::cluster

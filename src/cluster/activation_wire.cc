#include "cluster/activation_wire.h"

#include <cstring>

#include "kernels/quantize.h"

namespace ll::cluster {

std::optional<wire::ActivationType> parse_activation_type(std::string_view name) {
  if (name == "f32") return wire::ACTIVATION_F32;
  if (name == "f16") return wire::ACTIVATION_F16;
  if (name == "bf16") return wire::ACTIVATION_BF16;
  return std::nullopt;
}

std::string activation_type_name(wire::ActivationType type) {
  switch (type) {
    case wire::ACTIVATION_F16: return "f16";
    case wire::ACTIVATION_BF16: return "bf16";
    default: return "f32";
  }
}

uint64_t activation_bytes(int type) {
  switch (type) {
    case wire::ACTIVATION_F32: return 4;
    case wire::ACTIVATION_F16:
    case wire::ACTIVATION_BF16: return 2;
    default: return 0;
  }
}

zmq::message_t encode_activations(zmq::message_t hidden, int64_t count, wire::ActivationType type) {
  if (type == wire::ACTIVATION_F32) return hidden;
  const auto* in = static_cast<const float*>(hidden.data());
  zmq::message_t out(static_cast<size_t>(count) * 2);
  auto* bytes = static_cast<uint8_t*>(out.data());
  for (int64_t i = 0; i < count; ++i) {
    const uint16_t v = type == wire::ACTIVATION_F16 ? kernels::fp32_to_fp16(in[i]) : kernels::fp32_to_bf16(in[i]);
    std::memcpy(bytes + 2 * i, &v, 2);  // the frame need not be aligned for uint16_t
  }
  return out;
}

zmq::message_t decode_activations(zmq::message_t frame, int64_t count, wire::ActivationType type) {
  if (type == wire::ACTIVATION_F32) {
    // The executor works on floats in place; a received buffer is not guaranteed to be aligned for them.
    if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(float) == 0) return frame;
    return zmq::message_t(frame.data(), frame.size());
  }
  const auto* bytes = static_cast<const uint8_t*>(frame.data());
  zmq::message_t out(static_cast<size_t>(count) * sizeof(float));  // zmq allocates with malloc: aligned
  auto* values = static_cast<float*>(out.data());
  for (int64_t i = 0; i < count; ++i) {
    uint16_t v;
    std::memcpy(&v, bytes + 2 * i, 2);
    values[i] = type == wire::ACTIVATION_F16 ? kernels::fp16_to_fp32(v) : kernels::bf16_to_fp32(v);
  }
  return out;
}

}  // namespace ll::cluster

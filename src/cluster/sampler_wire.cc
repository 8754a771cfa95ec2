#include "cluster/sampler_wire.h"

namespace ll::cluster {

void sampler_to_wire(const text::SamplerParams& p, wire::SamplerParams* w) {
  w->set_temp(p.temp);
  w->set_top_k(p.top_k);
  w->set_top_p(p.top_p);
  w->set_min_p(p.min_p);
  w->set_repeat_penalty(p.repeat_penalty);
  w->set_repeat_last_n(p.repeat_last_n);
  w->set_seed(p.seed);
}

text::SamplerParams sampler_from_wire(const wire::SamplerParams& w) {
  text::SamplerParams p;
  p.temp = w.temp();
  p.top_k = w.top_k();
  p.top_p = w.top_p();
  p.min_p = w.min_p();
  p.repeat_penalty = w.repeat_penalty();
  p.repeat_last_n = w.repeat_last_n();
  p.seed = w.seed();
  return p;
}

void sampler_state_to_wire(const text::SamplerState& s, wire::SamplerState* w) {
  sampler_to_wire(s.params, w->mutable_params());
  w->set_rng_state(s.rng_state);
  w->mutable_recent()->Assign(s.recent.begin(), s.recent.end());
}

text::SamplerState sampler_state_from_wire(const wire::SamplerState& w) {
  return {sampler_from_wire(w.params()), w.rng_state(), {w.recent().begin(), w.recent().end()}};
}

}  // namespace ll::cluster

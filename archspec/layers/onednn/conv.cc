// oneDNN convolutions as XLA FFI custom calls (archspec.layers.onednn).
//
// Layouts are JAX's channels-last ones: input/output (N, *spatial, C), kernel
// (*kernel, C_in / groups, C_out) with output channels group-major (lax's HWIO with
// feature_group_count). 1-3 spatial dims, float32, stride, asymmetric padding, dilation,
// groups. Three handlers:
//   OnednnConvFwd (x, w) -> y          forward
//   OnednnConvBwdData (dy, w) -> dx    input gradient
//   OnednnConvBwdWeights (x, dy) -> dw weight gradient
// Primitives are cached per (kind, shapes, parameters). Activations stay in the caller's
// channels-last layout; the kernel (or its gradient) is reordered to and from the blocked
// layout the primitive picks.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;
using dnnl::memory;

namespace {

enum Kind { kFwd = 0, kBwdData = 1, kBwdWeights = 2 };

dnnl::engine& Engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// Channels-last activation (N, *S, C) as oneDNN's logical (N, C, *S) with strides.
memory::desc ActDesc(const std::vector<int64_t>& shape) {
  const int nd = static_cast<int>(shape.size());
  memory::dims dims(nd), strides(nd);
  dims[0] = shape[0];
  dims[1] = shape[nd - 1];
  for (int i = 1; i < nd - 1; ++i) dims[i + 1] = shape[i];
  // physical order: N, S..., C
  std::vector<int64_t> pstride(nd);
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; --i) { pstride[i] = s; s *= shape[i]; }
  strides[0] = pstride[0];
  strides[1] = pstride[nd - 1];
  for (int i = 1; i < nd - 1; ++i) strides[i + 1] = pstride[i];
  return memory::desc(dims, memory::data_type::f32, strides);
}

// Kernel (*K, I, O) with O = G * Og as oneDNN's (O, I, *K) or (G, Og, I, *K).
memory::desc WeiDesc(const std::vector<int64_t>& shape, int64_t groups) {
  const int ns = static_cast<int>(shape.size()) - 2;
  const int64_t I = shape[ns], O = shape[ns + 1];
  std::vector<int64_t> kstride(ns);
  int64_t s = I * O;
  for (int i = ns - 1; i >= 0; --i) { kstride[i] = s; s *= shape[i]; }
  memory::dims dims, strides;
  if (groups == 1) {
    dims = {O, I};
    strides = {1, O};
  } else {
    dims = {groups, O / groups, I};
    strides = {O / groups, 1, O};
  }
  for (int i = 0; i < ns; ++i) { dims.push_back(shape[i]); strides.push_back(kstride[i]); }
  return memory::desc(dims, memory::data_type::f32, strides);
}

struct Entry {
  Kind kind;
  memory::desc x_md, w_md, y_md;   // user (channels-last / HWIO) descriptors
  memory::desc w_prim_md;          // the primitive's kernel layout
  bool reorder_w = false;
  dnnl::primitive prim;
  dnnl::primitive w_reorder;       // user -> prim (fwd, bwd_data) or prim -> user (bwd_weights)
  size_t w_prim_bytes = 0;
  memory::desc scratch_md;         // per-call scratchpad (user-managed: calls may overlap)
  memory::desc reorder_scratch_md;
};

std::mutex cache_mu;
std::unordered_map<std::string, std::shared_ptr<Entry>> cache;

std::shared_ptr<Entry> GetEntry(Kind kind, const std::vector<int64_t>& xs,
                                const std::vector<int64_t>& ws,
                                const std::vector<int64_t>& ys,
                                ffi::Span<const int64_t> stride,
                                ffi::Span<const int64_t> pad_lo,
                                ffi::Span<const int64_t> pad_hi,
                                ffi::Span<const int64_t> dilation, int64_t groups) {
  std::ostringstream key;
  auto add = [&key](const auto& values) {
    for (auto v : values) key << v << ',';
    key << '|';
  };
  key << kind << '|';
  add(xs);
  add(ws);
  add(ys);
  add(stride);
  add(pad_lo);
  add(pad_hi);
  add(dilation);
  key << groups;
  const std::string k = key.str();
  {
    std::lock_guard<std::mutex> lock(cache_mu);
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
  }
  auto e = std::make_shared<Entry>();
  e->kind = kind;
  e->x_md = ActDesc(xs);
  e->y_md = ActDesc(ys);
  e->w_md = WeiDesc(ws, groups);
  memory::dims st(stride.begin(), stride.end()), pl(pad_lo.begin(), pad_lo.end()),
      pr(pad_hi.begin(), pad_hi.end()), dl;
  for (auto d : dilation) dl.push_back(d - 1);  // oneDNN counts the gaps
  memory::desc w_any(e->w_md.get_dims(), memory::data_type::f32, memory::format_tag::any);
  auto& eng = Engine();
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  auto fwd_pd = dnnl::convolution_forward::primitive_desc(
      eng, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, e->x_md,
      w_any, e->y_md, st, dl, pl, pr, attr);
  if (kind == kFwd) {
    e->prim = dnnl::convolution_forward(fwd_pd);
    e->w_prim_md = fwd_pd.weights_desc();
    e->scratch_md = fwd_pd.scratchpad_desc();
  } else if (kind == kBwdData) {
    auto pd = dnnl::convolution_backward_data::primitive_desc(
        eng, dnnl::algorithm::convolution_direct, e->x_md, w_any, e->y_md, st, dl, pl, pr,
        fwd_pd, attr);
    e->prim = dnnl::convolution_backward_data(pd);
    e->w_prim_md = pd.weights_desc();
    e->scratch_md = pd.scratchpad_desc();
  } else {
    auto pd = dnnl::convolution_backward_weights::primitive_desc(
        eng, dnnl::algorithm::convolution_direct, e->x_md, w_any, e->y_md, st, dl, pl, pr,
        fwd_pd, attr);
    e->prim = dnnl::convolution_backward_weights(pd);
    e->w_prim_md = pd.diff_weights_desc();
    e->scratch_md = pd.scratchpad_desc();
  }
  e->reorder_w = e->w_prim_md != e->w_md;
  if (e->reorder_w) {
    e->w_prim_bytes = e->w_prim_md.get_size();
    auto rpd = kind == kBwdWeights
                   ? dnnl::reorder::primitive_desc(eng, e->w_prim_md, eng, e->w_md, attr)
                   : dnnl::reorder::primitive_desc(eng, e->w_md, eng, e->w_prim_md, attr);
    e->w_reorder = dnnl::reorder(rpd);
    e->reorder_scratch_md = rpd.scratchpad_desc();
  }
  std::lock_guard<std::mutex> lock(cache_mu);
  auto it = cache.emplace(k, e).first;
  return it->second;
}

std::vector<int64_t> Dims(ffi::Span<const int64_t> d) { return {d.begin(), d.end()}; }

struct AlignedBuf {
  void* p = nullptr;
  explicit AlignedBuf(size_t n) { if (n) p = std::aligned_alloc(64, (n + 63) / 64 * 64); }
  ~AlignedBuf() { std::free(p); }
};

template <Kind kind>
ffi::Error Run(ffi::AnyBuffer a, ffi::AnyBuffer b, ffi::Result<ffi::AnyBuffer> out,
               ffi::Span<const int64_t> stride, ffi::Span<const int64_t> pad_lo,
               ffi::Span<const int64_t> pad_hi, ffi::Span<const int64_t> dilation,
               int64_t groups) {
  try {
    std::vector<int64_t> xs, ws, ys;
    void *x, *w, *y;
    if (kind == kFwd) {
      xs = Dims(a.dimensions()); ws = Dims(b.dimensions()); ys = Dims(out->dimensions());
      x = a.untyped_data(); w = b.untyped_data(); y = out->untyped_data();
    } else if (kind == kBwdData) {
      ys = Dims(a.dimensions()); ws = Dims(b.dimensions()); xs = Dims(out->dimensions());
      y = a.untyped_data(); w = b.untyped_data(); x = out->untyped_data();
    } else {
      xs = Dims(a.dimensions()); ys = Dims(b.dimensions()); ws = Dims(out->dimensions());
      x = a.untyped_data(); y = b.untyped_data(); w = out->untyped_data();
    }
    auto e = GetEntry(kind, xs, ws, ys, stride, pad_lo, pad_hi, dilation, groups);
    auto& eng = Engine();
    dnnl::stream strm(eng);
    memory xm(e->x_md, eng, x), ym(e->y_md, eng, y), wm(e->w_md, eng, w);
    AlignedBuf wbuf(e->w_prim_bytes), sbuf(e->scratch_md.get_size());
    memory wp = e->reorder_w ? memory(e->w_prim_md, eng, wbuf.p) : wm;
    memory sp(e->scratch_md, eng, sbuf.p);
    AlignedBuf rbuf(e->reorder_w ? e->reorder_scratch_md.get_size() : 0);
    memory rsp = e->reorder_w ? memory(e->reorder_scratch_md, eng, rbuf.p) : sp;
    if (kind != kBwdWeights && e->reorder_w)
      e->w_reorder.execute(strm, {{DNNL_ARG_FROM, wm}, {DNNL_ARG_TO, wp},
                                  {DNNL_ARG_SCRATCHPAD, rsp}});
    if (kind == kFwd) {
      e->prim.execute(strm, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_WEIGHTS, wp}, {DNNL_ARG_DST, ym},
                             {DNNL_ARG_SCRATCHPAD, sp}});
    } else if (kind == kBwdData) {
      e->prim.execute(strm, {{DNNL_ARG_DIFF_DST, ym}, {DNNL_ARG_WEIGHTS, wp},
                             {DNNL_ARG_DIFF_SRC, xm}, {DNNL_ARG_SCRATCHPAD, sp}});
    } else {
      e->prim.execute(strm, {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DIFF_DST, ym},
                             {DNNL_ARG_DIFF_WEIGHTS, wp}, {DNNL_ARG_SCRATCHPAD, sp}});
      if (e->reorder_w)
        e->w_reorder.execute(strm, {{DNNL_ARG_FROM, wp}, {DNNL_ARG_TO, wm},
                                    {DNNL_ARG_SCRATCHPAD, rsp}});
    }
    strm.wait();
  } catch (const dnnl::error& err) {
    return ffi::Error(ffi::ErrorCode::kInternal, std::string("oneDNN: ") + err.what());
  } catch (const std::exception& err) {
    return ffi::Error(ffi::ErrorCode::kInternal, err.what());
  }
  return ffi::Error::Success();
}

}  // namespace

// Which implementation oneDNN picked for a configuration (for the benchmark's report).
extern "C" const char* archspec_onednn_impl(int kind, int nd, const int64_t* xs, const int64_t* ws,
                                        const int64_t* ys, const int64_t* st,
                                        const int64_t* pl, const int64_t* pr,
                                        const int64_t* dl, int64_t groups) {
  static thread_local std::string name;
  try {
    const int ns = nd - 2;
    auto e = GetEntry(static_cast<Kind>(kind), std::vector<int64_t>(xs, xs + nd),
                      std::vector<int64_t>(ws, ws + nd), std::vector<int64_t>(ys, ys + nd),
                      ffi::Span<const int64_t>(st, ns), ffi::Span<const int64_t>(pl, ns),
                      ffi::Span<const int64_t>(pr, ns), ffi::Span<const int64_t>(dl, ns),
                      groups);
    const char* impl = nullptr;
    dnnl_primitive_desc_query(e->prim.get_primitive_desc(), dnnl_query_impl_info_str, 0, &impl);
    name = impl ? impl : "?";
  } catch (const std::exception& err) {
    name = std::string("error: ") + err.what();
  }
  return name.c_str();
}

#define CONV_BINDING(K)                                   \
  ffi::Ffi::Bind()                                        \
      .Arg<ffi::AnyBuffer>()                              \
      .Arg<ffi::AnyBuffer>()                              \
      .Ret<ffi::AnyBuffer>()                              \
      .Attr<ffi::Span<const int64_t>>("stride")           \
      .Attr<ffi::Span<const int64_t>>("pad_lo")           \
      .Attr<ffi::Span<const int64_t>>("pad_hi")           \
      .Attr<ffi::Span<const int64_t>>("dilation")         \
      .Attr<int64_t>("groups")

XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConvFwd, Run<kFwd>, CONV_BINDING(kFwd));
XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConvBwdData, Run<kBwdData>, CONV_BINDING(kBwdData));
XLA_FFI_DEFINE_HANDLER_SYMBOL(OnednnConvBwdWeights, Run<kBwdWeights>, CONV_BINDING(kBwdWeights));

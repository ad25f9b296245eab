/* torch_allocator.cpp -- BACKEND_MEMORY_LIMIT for PyTorch: a counting CPU allocator.
 *
 * Built as its own library (build/redisai_torch.so, linked against the venv's libc10) and loaded by
 * src/redisai/backends/torch.py after `import torch`; redisai.so itself never links torch.
 * c10::SetCPUAllocator makes it the allocator of every CPU tensor torch creates from then on: model
 * weights, intermediates and outputs of models and scripts. An allocation that would take the total
 * past the limit throws c10::OutOfMemoryError instead of reaching the kernel's OOM killer; the run
 * fails, the server and the model stay.
 *
 * Each block carries a 64-byte header holding its size (c10's own alignment, so the tensor data stays
 * 64-byte aligned), which lets the raw deleter give the bytes back. Not counted: memory a kernel takes
 * without torch's allocator (oneDNN and OpenMP scratch, the interpreter's own structures) and
 * tensors created before this allocator was installed.
 */

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <cstdint>

namespace {

constexpr size_t kHeader = 64;

std::atomic<int64_t> used{0};
std::atomic<int64_t> peak{0};
std::atomic<int64_t> refused{0};
std::atomic<int64_t> limit{0};  // bytes; 0: count only

void raw_delete(void* data) {
  char* block = static_cast<char*>(data) - kHeader;
  used.fetch_sub(static_cast<int64_t>(*reinterpret_cast<size_t*>(block)));
  c10::free_cpu(block);
}

struct BudgetAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t nbytes) override {
    const int64_t now = used.fetch_add(static_cast<int64_t>(nbytes)) + static_cast<int64_t>(nbytes);
    const int64_t cap = limit.load();
    if (cap > 0 && now > cap) {
      used.fetch_sub(static_cast<int64_t>(nbytes));
      refused.fetch_add(1);
      TORCH_CHECK_WITH(OutOfMemoryError, false, "Torch memory limit exceeded, memory allocation failed.");
    }
    int64_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    char* block;
    try {
      block = static_cast<char*>(c10::alloc_cpu(nbytes + kHeader));
    } catch (...) {
      used.fetch_sub(static_cast<int64_t>(nbytes));
      throw;
    }
    *reinterpret_cast<size_t*>(block) = nbytes;
    void* data = block + kHeader;
    return {data, data, &raw_delete, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &raw_delete; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
};

BudgetAllocator allocator;

}  // namespace

extern "C" {

/* Installs the allocator (once; later calls only change the limit). Priority 1 wins over c10's
 * default CPU allocator (0). */
void redisai_torch_memory_install(int64_t limit_bytes) {
  static std::atomic<bool> installed{false};
  limit.store(limit_bytes);
  if (!installed.exchange(true)) {
    c10::SetCPUAllocator(&allocator, 1);
  }
}

int64_t redisai_torch_memory_used(void) { return used.load(); }
int64_t redisai_torch_memory_peak(void) { return peak.load(); }
int64_t redisai_torch_memory_refused(void) { return refused.load(); }

}

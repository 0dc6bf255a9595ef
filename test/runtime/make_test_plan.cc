// make-test-plan: writes the linear-regression test plan (test_plans.h) for
// the launcher tests.
//   make-test-plan OUT.zplan [--world-size N] [--batch B] [--features F]
//                  [--sharded] [--lr LR] [--version V] [--backend cpu|cuda]
//                  [--onnx MODEL.onnx]   (embedded as the plan's onnx_model)
//   make-test-plan OUT.zplan --forward [--batch B] [--features F] [--k K]
//                  (the forward-only plan of test_plans.h, no loss)
//   make-test-plan OUT.zplan --batchnorm [--world-size N] [--batch B] [--lr LR] [--onnx M]
//                  (the BatchNorm plan with model state of test_plans.h)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "test_plans.h"

int main(int argc, char** argv) {
  zero::test::LinRegOptions o;
  const char* out = nullptr;
  bool forward = false, batchnorm = false;
  int64_t k = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--sharded") o.sharded = true;
    else if (a == "--forward") forward = true;
    else if (a == "--batchnorm") batchnorm = true;
    else if (a == "--k" && v) k = std::atoll(argv[++i]);
    else if (a == "--world-size" && v) o.world_size = uint32_t(std::atoi(argv[++i]));
    else if (a == "--batch" && v) o.batch = std::atoll(argv[++i]);
    else if (a == "--features" && v) o.features = std::atoll(argv[++i]);
    else if (a == "--lr" && v) o.lr = std::strtof(argv[++i], nullptr);
    else if (a == "--version" && v) o.version = uint32_t(std::atoi(argv[++i]));
    else if (a == "--backend" && v) o.backend = std::strcmp(argv[++i], "cuda") == 0 ? zero::plan::Backend::Cuda
                                                                                     : zero::plan::Backend::Cpu;
    else if (a == "--onnx" && v) {
      FILE* f = std::fopen(argv[++i], "rb");
      if (!f) {
        std::fprintf(stderr, "make-test-plan: cannot read %s\n", argv[i]);
        return 1;
      }
      int c;
      while ((c = std::fgetc(f)) != EOF) o.onnx_model.push_back(uint8_t(c));
      std::fclose(f);
    } else if (!out && a[0] != '-') out = argv[i];
    else {
      std::fprintf(stderr, "make-test-plan: bad argument %s\n", argv[i]);
      return 1;
    }
  }
  if (!out) {
    std::fprintf(stderr, "make-test-plan: no output file\n");
    return 1;
  }
  const auto bytes = forward     ? zero::test::forward_plan(o.batch, o.features, k)
                     : batchnorm ? zero::test::batchnorm_plan(o.world_size, o.batch, o.lr, &o.onnx_model)
                                 : zero::test::linreg_plan(o);
  FILE* f = std::fopen(out, "wb");
  if (!f || std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "make-test-plan: cannot write %s\n", out);
    return 1;
  }
  return 0;
}

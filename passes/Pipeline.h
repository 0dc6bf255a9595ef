//===- Pipeline.h - the whole compilation, as one pass pipeline -----------===//
//
// zero-opt's ONNX mode and the registered `zero-pipeline` (mlir-opt mode, lit)
// build the same pass list from the same options.
//
//===----------------------------------------------------------------------===//

#ifndef ZERO_PASSES_PIPELINE_H
#define ZERO_PASSES_PIPELINE_H

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassOptions.h"

namespace zero {

/// Where the pipeline stops (zero-opt --emit): after import, after the
/// training step is built, after ZeRO partitioning, or at the memory-planned
/// plan program.
enum class PipelineStage { Imported, Train, Partitioned, Plan };

struct ZeroPipelineOptions : public mlir::PassPipelineOptions<ZeroPipelineOptions> {
  Option<std::string> optimizer{*this, "optimizer", llvm::cl::desc("sgd, adam or adamw"),
                                llvm::cl::init("adamw")};
  Option<double> lr{*this, "lr", llvm::cl::desc("learning rate"), llvm::cl::init(1e-3)};
  Option<double> momentum{*this, "momentum", llvm::cl::desc("SGD momentum"), llvm::cl::init(0.0)};
  Option<double> beta1{*this, "beta1", llvm::cl::desc("Adam beta1"), llvm::cl::init(0.9)};
  Option<double> beta2{*this, "beta2", llvm::cl::desc("Adam beta2"), llvm::cl::init(0.999)};
  Option<double> eps{*this, "eps", llvm::cl::desc("Adam epsilon"), llvm::cl::init(1e-8)};
  Option<double> weightDecay{*this, "weight-decay",
                             llvm::cl::desc("default: 0.01 for adamw, 0 for sgd and adam"),
                             llvm::cl::init(-1.0)};
  Option<int64_t> stage{*this, "zero-stage", llvm::cl::desc("ZeRO stage (0-3)"),
                        llvm::cl::init(0)};
  Option<int64_t> worldSize{*this, "world-size", llvm::cl::desc("number of ranks"),
                            llvm::cl::init(1)};
  Option<int64_t> persistBelow{
      *this, "zero-persist-below",
      llvm::cl::desc("stage 3: parameters of fewer bytes stay replicated (0: none)"),
      llvm::cl::init(0)};
  Option<std::string> freeze{*this, "freeze",
                             llvm::cl::desc("regex of parameter names not to train")};
  Option<std::string> trainable{*this, "trainable",
                                llvm::cl::desc("regex of the only parameter names to train")};
  Option<int64_t> gradAccum{*this, "grad-accum",
                            llvm::cl::desc("micro-steps per optimizer step"), llvm::cl::init(1)};
  Option<std::string> lrSchedule{*this, "lr-schedule",
                                 llvm::cl::desc("constant, linear or cosine (empty: none)")};
  Option<int64_t> warmupSteps{*this, "warmup-steps", llvm::cl::desc("schedule warmup steps"),
                              llvm::cl::init(0)};
  Option<int64_t> totalSteps{*this, "total-steps", llvm::cl::desc("schedule length"),
                             llvm::cl::init(0)};
  Option<double> minLrRatio{*this, "min-lr-ratio", llvm::cl::desc("schedule floor / lr"),
                            llvm::cl::init(0.0)};
  Option<double> clipGradNorm{*this, "clip-grad-norm",
                              llvm::cl::desc("max global gradient norm (0: no clipping)"),
                              llvm::cl::init(0.0)};
  Option<std::string> target{*this, "target", llvm::cl::desc("cpu or cuda"),
                             llvm::cl::init("cpu")};
  Option<bool> forwardOnly{*this, "forward-only",
                           llvm::cl::desc("evaluate the model: no training step")};
  Option<bool> eval{*this, "eval",
                    llvm::cl::desc("also an evaluation program (the loss in evaluation mode)")};
  Option<bool> omitWeights{*this, "omit-weights",
                           llvm::cl::desc("leave trainable initial values out of the plan")};
  Option<int64_t> prefetch{*this, "prefetch",
                           llvm::cl::desc("stage-3 gather distance (-1: 1 on cuda, 0 on cpu)"),
                           llvm::cl::init(-1)};
  Option<int64_t> overlapWindow{
      *this, "overlap-window",
      llvm::cl::desc("reduce-scatters in flight (-1: 2 on cuda, 0 on cpu)"), llvm::cl::init(-1)};
  Option<double> bucketMb{*this, "bucket-mb",
                          llvm::cl::desc("stage-0 bucket in MiB (-1: 25 on cuda, 0 on cpu)"),
                          llvm::cl::init(-1)};
};

/// Adds the passes that take an imported module (onnx dialect) to `stop`.
void buildZeroPipeline(mlir::OpPassManager &pm, const ZeroPipelineOptions &options,
                       PipelineStage stop = PipelineStage::Plan);

/// Registers `zero-pipeline` (the whole pipeline to the plan program).
void registerZeroPipeline();

} // namespace zero

#endif // ZERO_PASSES_PIPELINE_H

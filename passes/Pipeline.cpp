//===- Pipeline.cpp - the whole compilation, as one pass pipeline ---------===//

#include "passes/Pipeline.h"
#include "passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void zero::buildZeroPipeline(OpPassManager &pm, const ZeroPipelineOptions &options,
                             PipelineStage stop) {
  const bool cuda = options.target == "cuda";
  // Folded shape subgraphs repeat constants and computations: CSE keeps one
  // of each. After autodiff only folding runs (it composes the transposes
  // that gradient rules add): CSE would merge the backward pass's re-reads of
  // parameters with the forward ones, which ZeRO-3 keeps apart on purpose.
  if (stop >= PipelineStage::Train) {
    pm.addPass(createCanonicalizerPass());
    pm.addPass(createCSEPass());
  }
  if (stop >= PipelineStage::Train && options.forwardOnly)
    pm.addPass(createMarkModelState());
  if (stop >= PipelineStage::Train && !options.forwardOnly) {
    if (options.eval)
      pm.addPass(createBuildEvalStep());
    BuildTrainStepOptions train;
    train.optimizer = options.optimizer;
    train.lr = options.lr;
    train.momentum = options.momentum;
    train.beta1 = options.beta1;
    train.beta2 = options.beta2;
    train.eps = options.eps;
    train.weightDecay = options.weightDecay;
    train.microSteps = options.gradAccum;
    train.freeze = options.freeze;
    train.trainable = options.trainable;
    pm.addPass(createBuildTrainStep(train));
    pm.addPass(createCanonicalizerPass());
    if (!options.lrSchedule.empty())
      pm.addPass(createScheduleLearningRate(
          {options.lrSchedule, options.warmupSteps, options.totalSteps, options.minLrRatio}));
  }
  if (stop >= PipelineStage::Partitioned && !options.forwardOnly) {
    pm.addPass(createPartition({options.stage, options.worldSize, options.persistBelow}));
    if (options.clipGradNorm > 0)
      pm.addPass(createClipGradNorm({options.clipGradNorm}));
    // Collectives overlap compute only on CUDA (MPI progresses them inside
    // MPI calls), hence the CPU defaults of no prefetch, window or bucket.
    const int64_t prefetch = options.prefetch >= 0 ? int64_t(options.prefetch) : cuda;
    if (options.stage == 3 && prefetch > 0)
      pm.addPass(createPrefetchGathers({prefetch}));
  }
  if (stop >= PipelineStage::Plan) {
    pm.addPass(createLowerToPlan({options.target, options.omitWeights}));
    const double bucketMb = options.bucketMb >= 0 ? double(options.bucketMb) : (cuda ? 25 : 0);
    pm.addPass(createBucketCollectives({static_cast<int64_t>(bucketMb * (1 << 20))}));
    const int64_t window = options.overlapWindow >= 0 ? int64_t(options.overlapWindow) : (cuda ? 2 : 0);
    pm.addPass(createOverlapCollectives({window}));
    // cudaMalloc and cuBLAS favour 256-byte alignment; 64 is a cache line.
    pm.addPass(createPlanMemory({cuda ? 256 : 64}));
  }
}

void zero::registerZeroPipeline() {
  PassPipelineRegistration<ZeroPipelineOptions>(
      "zero-pipeline", "the whole zero pipeline: training step, ZeRO partitioning, plan",
      [](OpPassManager &pm, const ZeroPipelineOptions &options) {
        buildZeroPipeline(pm, options);
      });
}

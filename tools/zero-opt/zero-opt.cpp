//===- zero-opt.cpp - the zero compiler driver ----------------------------===//
//
// Two modes:
//   zero-opt model.onnx -o model.zplan --zero-stage=2 --world-size=4 ...
//       compiles an ONNX model to a plan (or prints a stage with --emit);
//   zero-opt step.mlir --zero-partition="stage=3 world-size=8"
//       behaves like mlir-opt with zero's dialects and passes registered.
//
//===----------------------------------------------------------------------===//

#include "codegen/MemoryReport.h"
#include "codegen/Passes.h"
#include "codegen/PlanSerializer.h"
#include "frontends/onnx/OnnxImporter.h"
#include "passes/GradientOpInterface.h"
#include "passes/Passes.h"
#include "passes/Pipeline.h"
#include "zero/files.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MLProgram/IR/MLProgram.h"
#include "mlir/IR/AsmState.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/Error.h"

#include <cmath>
#include <csignal>
#include <cstdio>
#include <utility>

using namespace mlir;

namespace {

/// Asks for mlir-opt mode's help (its and LLVM's options and zero's passes).
bool isMlirHelp(StringRef arg) { return arg == "--help-mlir" || arg == "-help-mlir"; }

/// ONNX mode unless the input is MLIR: a positional argument that is not a
/// .mlir file, or any option only the ONNX mode has, selects it, and so does
/// --help (and its variants) without a .mlir file: the compiler's help is
/// what a user of the driver asks for. Otherwise zero-opt is mlir-opt
/// (reading stdin when no file is given).
bool isOnnxInvocation(int argc, char **argv) {
  static constexpr StringLiteral onnxOnly[] = {
      "--zero-stage", "--world-size", "--optimizer", "--lr",     "--momentum",
      "--beta1",      "--beta2",      "--eps",       "--weight-decay", "--target",
      "--report",     "--emit",       "--forward-only", "--zero-persist-below",
      "--lr-schedule", "--warmup-steps", "--total-steps", "--min-lr-ratio", "--clip-grad-norm",
      "--grad-accum", "--eval"};
  bool help = false;
  for (int i = 1; i < argc; ++i) {
    StringRef arg = argv[i];
    if (arg == "-o") {
      ++i; // its value
      continue;
    }
    if (!arg.starts_with("-"))
      return !arg.ends_with(".mlir");
    if (isMlirHelp(arg))
      return false;
    help |= arg.starts_with("--help") || arg.starts_with("-help");
    for (StringRef option : onnxOnly)
      if (arg == option || arg.starts_with((option + "=").str()))
        return true;
  }
  return help;
}

// Limits of the numeric options: far past any real use, small enough that
// the passes' arithmetic on them cannot overflow.
constexpr int64_t kMaxWorldSize = 1 << 20;
constexpr int64_t kMaxOverlapWindow = 4096; // the runtime's slots (session.cc kMaxSlots)
constexpr int64_t kMaxPrefetch = 1 << 20;
constexpr int64_t kMaxBucketMb = 1 << 20;   // 1 TiB
constexpr int64_t kMaxGradAccum = 1 << 10;  // the plan holds each micro-step's passes

/// The stages --emit can stop after.
enum class Emit { Onnx, Train, Partition, Plan, ZPlan };

struct CompileOptions {
  std::string input, output, report, optimizer, target;
  int64_t stage = 0, worldSize = 1, prefetch = -1, overlapWindow = -1, persistBelow = 0;
  bool forwardOnly = false, omitWeights = false;
  double lr, momentum, beta1, beta2, eps, weightDecay;
  Emit emit;
  double bucketMb = -1;
  std::string lrSchedule;
  int64_t warmupSteps = 0, totalSteps = 0;
  double minLrRatio = 0, clipGradNorm = 0;
  int64_t gradAccum = 1;
  bool eval = false;
  std::string freeze, trainable;
};

/// Parses the ONNX-mode command line. Options live here, not at namespace
/// scope, so they never collide with MlirOptMain's in the other mode.
CompileOptions parseOnnxCommandLine(int argc, char **argv) {
  namespace cl = llvm::cl;
  cl::OptionCategory category("zero-opt (ONNX input)");
  cl::opt<std::string> input(cl::Positional, cl::desc("<model.onnx | model.onnxtxt>"),
                             cl::cat(category));
  cl::opt<std::string> output("o", cl::desc("output file (default: stdout)"),
                              cl::value_desc("file"), cl::init("-"), cl::cat(category));
  cl::opt<int64_t> stage("zero-stage", cl::desc("ZeRO stage: 0 (DDP), 1, 2 or 3"), cl::init(0),
                         cl::cat(category));
  cl::opt<int64_t> worldSize("world-size", cl::desc("number of ranks"), cl::init(1),
                             cl::cat(category));
  cl::opt<int64_t> persistBelow(
      "zero-persist-below",
      cl::desc("stage 3: parameters of fewer bytes stay whole on every rank, with their "
               "gradients and optimizer state (no all-gathers for biases and norm scales; as "
               "DeepSpeed's stage3_param_persistence_threshold; default 0: none)"),
      cl::value_desc("bytes"), cl::init(0), cl::cat(category));
  cl::opt<std::string> optimizer("optimizer", cl::desc("sgd, adam or adamw"),
                                 cl::init("adamw"), cl::cat(category));
  cl::opt<double> lr("lr", cl::desc("learning rate"), cl::init(1e-3), cl::cat(category));
  cl::opt<double> momentum("momentum", cl::desc("SGD momentum"), cl::init(0.0),
                           cl::cat(category));
  cl::opt<double> beta1("beta1", cl::desc("Adam(W) first-moment decay"), cl::init(0.9),
                        cl::cat(category));
  cl::opt<double> beta2("beta2", cl::desc("Adam(W) second-moment decay"), cl::init(0.999),
                        cl::cat(category));
  cl::opt<double> eps("eps", cl::desc("Adam(W) epsilon"), cl::init(1e-8), cl::cat(category));
  cl::opt<double> weightDecay("weight-decay",
                              cl::desc("default: 0.01 for adamw, 0 for sgd and adam"),
                              cl::init(-1.0), cl::cat(category));
  cl::opt<std::string> lrSchedule(
      "lr-schedule",
      cl::desc("constant, linear or cosine: the rate of each optimizer step (HuggingFace's "
               "get_*_schedule_with_warmup); default: a constant --lr, unscheduled"),
      cl::cat(category));
  cl::opt<int64_t> warmupSteps("warmup-steps",
                               cl::desc("steps of linear warmup from 0 to --lr (default 0)"),
                               cl::init(0), cl::cat(category));
  cl::opt<int64_t> totalSteps(
      "total-steps", cl::desc("the step at which linear and cosine end (needed by them)"),
      cl::init(0), cl::cat(category));
  cl::opt<double> minLrRatio("min-lr-ratio",
                             cl::desc("the fraction of --lr the decay ends at (default 0)"),
                             cl::init(0.0), cl::cat(category));
  cl::opt<int64_t> gradAccum(
      "grad-accum",
      cl::desc("micro-steps per optimizer step (gradient accumulation; default 1): the "
               "global batch is K * world size * micro-batch rows"),
      cl::init(1), cl::cat(category));
  cl::opt<double> clipGradNorm(
      "clip-grad-norm",
      cl::desc("scale the gradients to this global L2 norm at most, as "
               "torch.nn.utils.clip_grad_norm_ (default 0: no clipping)"),
      cl::init(0.0), cl::cat(category));
  cl::opt<bool> eval(
      "eval",
      cl::desc("also compile an evaluation program: the loss in evaluation mode (no dropout, "
               "BatchNorm with its running statistics), for zero-run --eval-data"),
      cl::cat(category));
  cl::opt<std::string> freeze(
      "freeze",
      cl::desc("initializers whose whole name matches this regex are not trained (float "
               "buffers: causal masks, rotary tables; no gradient, no optimizer state)"),
      cl::value_desc("regex"), cl::cat(category));
  cl::opt<std::string> trainable(
      "trainable", cl::desc("train only the initializers whose whole name matches this regex"),
      cl::value_desc("regex"), cl::cat(category));
  cl::opt<std::string> target("target", cl::desc("cpu or cuda"), cl::init("cpu"),
                              cl::cat(category));
  cl::opt<bool> forwardOnly(
      "forward-only",
      cl::desc("evaluate the model instead of training it: every graph output becomes a plan "
               "output (world size 1)"),
      cl::cat(category));
  cl::opt<int64_t> prefetch(
      "prefetch",
      cl::desc("stage 3: issue each parameter all-gather this many gathers early "
               "(default: 1 for --target=cuda, 0 for cpu, where collectives do not overlap)"),
      cl::init(-1), cl::cat(category));
  cl::opt<int64_t> overlapWindow(
      "overlap-window",
      cl::desc("run collectives asynchronously, each waited for before its result is used; at "
               "most this many stage 2-3 gradient reduce-scatters in flight, each keeping its "
               "full gradient alive (0: every collective synchronous; default 2 for "
               "--target=cuda, 0 for cpu, where MPI progresses them only inside MPI calls)"),
      cl::init(-1), cl::cat(category));
  cl::opt<double> bucketMb(
      "bucket-mb",
      cl::desc("issue all-reduces (stage 0) together once this many MiB of them are pending, "
               "as one group (default 25 for --target=cuda, as DDP; 0 for cpu: each at once)"),
      cl::init(-1), cl::cat(category));
  cl::opt<bool> omitWeights(
      "omit-weights",
      cl::desc("leave the trainable parameters' initial values out of the plan (for large "
               "models; run it with zero-run --init-params DIR)"),
      cl::cat(category));
  cl::opt<std::string> report("report", cl::desc("write per-rank memory and traffic as JSON"),
                              cl::value_desc("file"), cl::cat(category));
  cl::opt<Emit> emit(
      "emit", cl::desc("what to write"), cl::init(Emit::ZPlan),
      cl::values(clEnumValN(Emit::Onnx, "onnx", "the imported model (onnx dialect)"),
                 clEnumValN(Emit::Train, "train", "the training step before partitioning"),
                 clEnumValN(Emit::Partition, "partitioned", "the step after ZeRO partitioning"),
                 clEnumValN(Emit::Partition, "mlir", "the same as partitioned (its old name)"),
                 clEnumValN(Emit::Plan, "plan", "the plan dialect, memory planned"),
                 clEnumValN(Emit::ZPlan, "zplan", "the FlatBuffer plan (default)")),
      cl::cat(category));
  // --mlir-elide-resource-strings-if-larger and friends for --emit output,
  // --mlir-timing and --mlir-print-ir-after-all for looking inside. --help
  // lists the few of them below and --help-hidden all; LLVM's own options
  // (code generation for every target: hundreds) are never listed here.
  llvm::StringSet<> before;
  for (const auto &[name, option] : cl::getRegisteredOptions())
    before.insert(name);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  // Named to sort after `category`: help lists categories by name.
  cl::OptionCategory mlirCategory("zero-opt: MLIR, to look inside (--help-hidden lists all)");
  static constexpr StringLiteral shown[] = {
      "mlir-timing", "mlir-print-ir-before-all", "mlir-print-ir-after-all",
      "mlir-print-debuginfo", "mlir-elide-resource-strings-if-larger"};
  for (const auto &[name, option] : cl::getRegisteredOptions()) {
    if (before.contains(name))
      continue;
    option->addCategory(mlirCategory);
    if (!llvm::is_contained(shown, name))
      option->setHiddenFlag(cl::Hidden);
  }
  cl::HideUnrelatedOptions({&category, &mlirCategory});
  cl::ParseCommandLineOptions(
      argc, argv,
      "zero compiler: ONNX model to a ZeRO training plan\n\n"
      "  zero-opt MODEL.onnx -o MODEL.zplan --zero-stage=S --world-size=N [options]\n"
      "  zero-opt FILE.mlir [passes]  is mlir-opt with zero's dialects and passes;\n"
      "                               its options: zero-opt --help-mlir\n");
  CompileOptions options{input,       output,      report,      optimizer,     target,
                         stage,       worldSize,   prefetch,    overlapWindow, persistBelow,
                         forwardOnly, omitWeights, lr,          momentum,      beta1,
                         beta2,       eps,         weightDecay, emit,          bucketMb,
                         lrSchedule,  warmupSteps, totalSteps,  minLrRatio,    clipGradNorm,
                         gradAccum,   eval,        freeze,      trainable};
  return options;
}

/// A raw_ostream onto an AtomicFile; write errors stay in the file and
/// surface at commit().
class AtomicFileStream : public llvm::raw_ostream {
public:
  explicit AtomicFileStream(zero::AtomicFile &file) : file(file) {}
  ~AtomicFileStream() override { flush(); }

private:
  void write_impl(const char *data, size_t size) override {
    (void)file.write(data, size);
    position += size;
  }
  uint64_t current_pos() const override { return position; }

  zero::AtomicFile &file;
  uint64_t position = 0;
};

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

int fail(const Twine &message) {
  llvm::errs() << "zero-opt: error: " << message << "\n";
  return 1;
}

int compileOnnx(int argc, char **argv) {
  CompileOptions options = parseOnnxCommandLine(argc, argv);
  if (options.input.empty())
    return fail("no input model (usage: zero-opt MODEL.onnx -o MODEL.zplan --zero-stage=S "
                "--world-size=N ...)");
  // Numbers are range checked here, once: a NaN or an absurd count would
  // otherwise reach the passes (or the plan) as garbage.
  if (options.worldSize < 1 || options.worldSize > kMaxWorldSize)
    return fail("--world-size must be from 1 to " + Twine(kMaxWorldSize) + ", got " +
                Twine(options.worldSize));
  if (options.stage < 0 || options.stage > 3)
    return fail("--zero-stage must be 0, 1, 2 or 3, got " + Twine(options.stage));
  for (auto [flag, value] : {std::pair{"--lr", options.lr}, {"--momentum", options.momentum},
                             {"--beta1", options.beta1}, {"--beta2", options.beta2},
                             {"--eps", options.eps}, {"--weight-decay", options.weightDecay},
                             {"--bucket-mb", options.bucketMb},
                             {"--min-lr-ratio", options.minLrRatio},
                             {"--clip-grad-norm", options.clipGradNorm}})
    if (!std::isfinite(value))
      return fail(Twine(flag) + " must be a finite number, got " + number(value));
  if ((options.bucketMb < 0 && options.bucketMb != -1) || options.bucketMb > kMaxBucketMb)
    return fail("--bucket-mb must be from 0 to " + Twine(kMaxBucketMb) + ", got " +
                number(options.bucketMb));
  if (options.overlapWindow < -1 || options.overlapWindow > kMaxOverlapWindow)
    return fail("--overlap-window must be from 0 to " + Twine(kMaxOverlapWindow) + ", got " +
                Twine(options.overlapWindow));
  if (options.persistBelow < 0)
    return fail("--zero-persist-below must be at least 0 bytes, got " +
                Twine(options.persistBelow));
  if (options.prefetch < -1 || options.prefetch > kMaxPrefetch)
    return fail("--prefetch must be from 0 to " + Twine(kMaxPrefetch) + ", got " +
                Twine(options.prefetch));
  const bool scheduled = !options.lrSchedule.empty() || options.warmupSteps != 0;
  if (!options.lrSchedule.empty() && options.lrSchedule != "constant" &&
      options.lrSchedule != "linear" && options.lrSchedule != "cosine")
    return fail("--lr-schedule must be constant, linear or cosine, got '" + options.lrSchedule +
                "'");
  if (options.warmupSteps < 0)
    return fail("--warmup-steps must be at least 0, got " + Twine(options.warmupSteps));
  if (options.totalSteps < 0)
    return fail("--total-steps must be at least 1, got " + Twine(options.totalSteps));
  const bool decays = options.lrSchedule == "linear" || options.lrSchedule == "cosine";
  if (decays && options.totalSteps == 0)
    return fail("--lr-schedule=" + options.lrSchedule + " needs --total-steps");
  if (decays && options.warmupSteps > options.totalSteps)
    return fail("--warmup-steps (" + Twine(options.warmupSteps) + ") must not exceed --total-steps (" +
                Twine(options.totalSteps) + ")");
  if (!decays && (options.totalSteps != 0 || options.minLrRatio != 0))
    return fail(Twine(options.totalSteps != 0 ? "--total-steps" : "--min-lr-ratio") +
                " needs --lr-schedule=linear or cosine");
  if (options.minLrRatio < 0 || options.minLrRatio > 1)
    return fail("--min-lr-ratio must be from 0 to 1, got " + number(options.minLrRatio));
  if (options.gradAccum < 1 || options.gradAccum > kMaxGradAccum)
    return fail("--grad-accum must be from 1 to " + Twine(kMaxGradAccum) + ", got " +
                Twine(options.gradAccum));
  if (options.forwardOnly && options.gradAccum != 1)
    return fail("--forward-only plans do not train: no --grad-accum");
  if (options.forwardOnly && options.eval)
    return fail("--forward-only plans evaluate already: no --eval");
  if (options.forwardOnly && (!options.freeze.empty() || !options.trainable.empty()))
    return fail("--forward-only plans do not train: no --freeze or --trainable");
  if (options.clipGradNorm < 0)
    return fail("--clip-grad-norm must be positive (0: no clipping), got " +
                number(options.clipGradNorm));
  if (options.forwardOnly && (scheduled || options.clipGradNorm > 0))
    return fail("--forward-only plans do not train: no --lr-schedule, --warmup-steps or "
                "--clip-grad-norm");
  if (options.target != "cpu" && options.target != "cuda")
    return fail("--target must be cpu or cuda, got '" + options.target + "'");
  if (options.emit == Emit::ZPlan && options.output == "-")
    return fail("a binary plan needs an output file: -o model.zplan");

  DialectRegistry registry;
  zero::registerGradientRules(registry);
  MLIRContext context(registry);
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  SourceMgrDiagnosticHandler diagnostics(sourceMgr, &context);

  if (options.forwardOnly && (options.worldSize != 1 || options.stage != 0))
    return fail("--forward-only plans run on one rank at stage 0");
  DefaultTimingManager timingManager;
  applyDefaultTimingManagerCLOptions(timingManager);
  TimingScope timing = timingManager.getRootScope();
  TimingScope importTiming = timing.nest("import ONNX");
  OwningOpRef<ModuleOp> module =
      zero::frontend::importOnnxModel(context, options.input, options.forwardOnly);
  importTiming.stop();
  if (!module)
    return 1;

  PassManager pm(&context);
  if (failed(applyPassManagerCLOptions(pm)))
    return 1;
  pm.enableTiming(timing);
  zero::ZeroPipelineOptions pipeline;
  pipeline.optimizer = options.optimizer;
  pipeline.lr = options.lr;
  pipeline.momentum = options.momentum;
  pipeline.beta1 = options.beta1;
  pipeline.beta2 = options.beta2;
  pipeline.eps = options.eps;
  pipeline.weightDecay = options.weightDecay;
  pipeline.stage = options.stage;
  pipeline.worldSize = options.worldSize;
  pipeline.persistBelow = options.persistBelow;
  pipeline.target = options.target;
  pipeline.forwardOnly = options.forwardOnly;
  pipeline.omitWeights = options.omitWeights;
  pipeline.prefetch = options.prefetch;
  pipeline.overlapWindow = options.overlapWindow;
  pipeline.bucketMb = options.bucketMb;
  if (scheduled)
    pipeline.lrSchedule = options.lrSchedule.empty() ? "constant" : options.lrSchedule;
  pipeline.warmupSteps = options.warmupSteps;
  pipeline.totalSteps = options.totalSteps;
  pipeline.minLrRatio = options.minLrRatio;
  pipeline.clipGradNorm = options.clipGradNorm;
  pipeline.gradAccum = options.gradAccum;
  pipeline.eval = options.eval;
  pipeline.freeze = options.freeze;
  pipeline.trainable = options.trainable;
  const zero::PipelineStage stop = options.emit == Emit::Onnx    ? zero::PipelineStage::Imported
                                   : options.emit == Emit::Train ? zero::PipelineStage::Train
                                   : options.emit == Emit::Partition
                                       ? zero::PipelineStage::Partitioned
                                       : zero::PipelineStage::Plan;
  zero::buildZeroPipeline(pm, pipeline, stop);
  if (failed(pm.run(*module)))
    return 1;

  zero::plan::ProgramOp program;
  if (options.emit >= Emit::Plan)
    program = *module->getOps<zero::plan::ProgramOp>().begin();

  // Outputs go to temporary files renamed into place once both are complete
  // (zero/files.h), so a failure never leaves a truncated plan or
  // report in place of an earlier good one.
  TimingScope writeTiming = timing.nest("write plan and report");
  if (!options.report.empty() && !program)
    return fail("--report needs the plan; drop --emit or use --emit=plan");
  zero::AtomicFile reportFile, outputFile;
  if (!options.report.empty()) {
    if (zero::Status status = reportFile.open(options.report); !status.ok())
      return fail(status.message());
    AtomicFileStream os(reportFile);
    zero::codegen::writeMemoryReport(program, os);
  }
  auto writeOutput = [&](llvm::raw_ostream &os) -> LogicalResult {
    if (options.emit == Emit::ZPlan)
      return zero::codegen::serializePlan(program, os);
    module->print(os);
    return success();
  };
  if (options.output == "-")
    return failed(writeOutput(llvm::outs())) ? 1 : 0;
  if (zero::Status status = outputFile.open(options.output); !status.ok())
    return fail(status.message());
  {
    AtomicFileStream os(outputFile);
    if (failed(writeOutput(os)))
      return 1;
  }
  for (zero::AtomicFile *file : {&outputFile, &reportFile})
    if (!file->path().empty())
      if (zero::Status status = file->commit(); !status.ok())
        return fail(status.message());
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // Past a file-size limit a write fails with EFBIG, reported like any other
  // write error, instead of the signal ending the process.
  signal(SIGXFSZ, SIG_IGN);
  if (isOnnxInvocation(argc, argv))
    return compileOnnx(argc, argv);
  // --help-mlir is mlir-opt's --help.
  std::string help = "--help";
  for (int i = 1; i < argc; ++i)
    if (isMlirHelp(argv[i]))
      argv[i] = help.data();

  zero::registerZeroPasses();
  zero::registerZeroPipeline();
  zero::codegen::registerZeroCodegenPasses();
  registerCanonicalizerPass();
  registerCSEPass();
  DialectRegistry registry;
  registry.insert<zero::onnx::OnnxDialect, zero::ZeroDialect, zero::plan::PlanDialect,
                  func::FuncDialect, ml_program::MLProgramDialect>();
  zero::registerGradientRules(registry);
  return asMainReturnCode(MlirOptMain(argc, argv, "zero optimizer driver\n", registry));
}

// RUN: zero-opt %s -split-input-file --zero-bucket-collectives="bytes=32" | FileCheck %s
// RUN: zero-opt %s -split-input-file --zero-bucket-collectives="bytes=0" | FileCheck %s --check-prefix=OFF
// RUN: zero-opt %s -split-input-file --zero-bucket-collectives="bytes=32" --zero-overlap-collectives \
// RUN:   | FileCheck %s --check-prefix=GROUPED

// Stage-0 gradients of 16 bytes each: the first two all-reduces fill a
// 32-byte bucket and are issued together where the second gradient is
// complete; the third is issued alone before the update that reads it.
// CHECK-LABEL: plan.program
// CHECK:         plan.instr "Fill" [] -> [@g1]
// CHECK-NEXT:    plan.instr "Fill" [] -> [@g2]
// CHECK-NEXT:    plan.instr "AllReduce" [@g1] -> [@g1]
// CHECK-NEXT:    plan.instr "AllReduce" [@g2] -> [@g2]
// CHECK-NEXT:    plan.instr "Fill" [] -> [@g3]
// CHECK-NEXT:    plan.instr "AllReduce" [@g3] -> [@g3]
// CHECK-NEXT:    plan.instr "SgdUpdate" [@p, @g3]
// CHECK-NEXT:    plan.instr "SgdUpdate" [@p, @g1]

// OFF-LABEL: plan.program
// OFF:         plan.instr "Fill" [] -> [@g1]
// OFF-NEXT:    plan.instr "AllReduce" [@g1] -> [@g1]

// The bucket becomes one group.
// GROUPED-LABEL: plan.program
// GROUPED:         plan.instr "AllReduce" [@g1] -> [@g1] {attrs = {group = 1 : i64, reduction = "mean", slot = 1 : i64}}
// GROUPED-NEXT:    plan.instr "AllReduce" [@g2] -> [@g2] {attrs = {group = 1 : i64, reduction = "mean", slot = 2 : i64}}
plan.program attributes {backend = "cuda", world_size = 2 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.p "parameter" {bytes = 16 : i64, persistent}
  plan.value @p : tensor<4xf32> in @mem.p
  plan.buffer @mem.g1 "gradient" {bytes = 16 : i64}
  plan.value @g1 : tensor<4xf32> in @mem.g1
  plan.buffer @mem.g2 "gradient" {bytes = 16 : i64}
  plan.value @g2 : tensor<4xf32> in @mem.g2
  plan.buffer @mem.g3 "gradient" {bytes = 16 : i64}
  plan.value @g3 : tensor<4xf32> in @mem.g3
  plan.instr "Fill" [] -> [@g1] {attrs = {value = 1.0 : f32}}
  plan.instr "AllReduce" [@g1] -> [@g1] {attrs = {reduction = "mean"}}
  plan.instr "Fill" [] -> [@g2] {attrs = {value = 2.0 : f32}}
  plan.instr "AllReduce" [@g2] -> [@g2] {attrs = {reduction = "mean"}}
  plan.instr "Fill" [] -> [@g3] {attrs = {value = 3.0 : f32}}
  plan.instr "AllReduce" [@g3] -> [@g3] {attrs = {reduction = "mean"}}
  plan.instr "SgdUpdate" [@p, @g3] -> [] {attrs = {lr = 1.0 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32}}
  plan.instr "SgdUpdate" [@p, @g1] -> [] {attrs = {lr = 1.0 : f32, momentum = 0.0 : f32, weight_decay = 0.0 : f32}}
}

// -----

// A bucket that is not full is issued before the first instruction touching
// one of its members; the others go with it.
// CHECK-LABEL: plan.program
// CHECK:         plan.instr "Fill" [] -> [@g1]
// CHECK-NEXT:    plan.instr "Fill" [] -> [@x]
// CHECK-NEXT:    plan.instr "AllReduce" [@g1] -> [@g1]
// CHECK-NEXT:    plan.instr "Copy" [@g1] -> [@x]
plan.program attributes {backend = "cuda", world_size = 2 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.g1 "gradient" {bytes = 8 : i64}
  plan.value @g1 : tensor<2xf32> in @mem.g1
  plan.buffer @mem.x "activation" {bytes = 8 : i64}
  plan.value @x : tensor<2xf32> in @mem.x
  plan.instr "Fill" [] -> [@g1] {attrs = {value = 1.0 : f32}}
  plan.instr "AllReduce" [@g1] -> [@g1] {attrs = {reduction = "sum"}}
  plan.instr "Fill" [] -> [@x] {attrs = {value = 2.0 : f32}}
  plan.instr "Copy" [@g1] -> [@x]
}

// -----

// A bucket never spans the step and the evaluation program: the step's
// pending all-reduce is issued at the step's end, before plan.evaluation.
// CHECK-LABEL: plan.program
// CHECK:         plan.instr "Fill" [] -> [@g1]
// CHECK-NEXT:    plan.instr "Fill" [] -> [@l]
// CHECK-NEXT:    plan.instr "AllReduce" [@g1] -> [@g1]
// CHECK-NEXT:    plan.evaluation
// CHECK-NEXT:    plan.instr "Fill" [] -> [@e]
// CHECK-NEXT:    plan.instr "AllReduce" [@e] -> [@e]
plan.program attributes {backend = "cuda", world_size = 2 : ui32, zero_stage = 0 : ui32} {
  plan.buffer @mem.g1 "gradient" {bytes = 16 : i64}
  plan.value @g1 : tensor<4xf32> in @mem.g1
  plan.buffer @mem.l "activation" {bytes = 4 : i64, persistent}
  plan.value @l : tensor<f32> in @mem.l
  plan.buffer @mem.e "activation" {bytes = 4 : i64, persistent}
  plan.value @e : tensor<f32> in @mem.e
  plan.instr "Fill" [] -> [@g1] {attrs = {value = 1.0 : f32}}
  plan.instr "AllReduce" [@g1] -> [@g1] {attrs = {reduction = "mean"}}
  plan.instr "Fill" [] -> [@l] {attrs = {value = 1.0 : f32}}
  plan.evaluation
  plan.instr "Fill" [] -> [@e] {attrs = {value = 2.0 : f32}}
  plan.instr "AllReduce" [@e] -> [@e] {attrs = {reduction = "mean"}}
  plan.loss @l
  plan.loss @e {eval}
}

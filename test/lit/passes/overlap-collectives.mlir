// RUN: zero-opt %s -split-input-file --zero-overlap-collectives | FileCheck %s
// RUN: zero-opt %s -split-input-file --zero-overlap-collectives="window=1" | FileCheck %s --check-prefix=WINDOW1
// RUN: zero-opt %s -split-input-file --zero-overlap-collectives="window=0" | FileCheck %s --check-prefix=SYNC

// Stage-2 style: each gradient dies at its reduce-scatter, so waiting later
// keeps it alive. With window 2, the first reduce-scatter is waited before
// the third starts (whose slot it frees); the shards' first use waits for
// nothing more, the rest complete at the end of the step.
// CHECK-LABEL: plan.program
// CHECK:         plan.instr "Fill" [] -> [@g1]
// CHECK-NEXT:    plan.instr "ReduceScatter" [@g1] -> [@s1] {attrs = {reduction = "mean", slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "Fill" [] -> [@g2]
// CHECK-NEXT:    plan.instr "ReduceScatter" [@g2] -> [@s2] {attrs = {reduction = "mean", slot = 2 : i64}}
// CHECK-NEXT:    plan.instr "Fill" [] -> [@g3]
// CHECK-NEXT:    plan.instr "Wait" [@g1, @s1] -> [] {attrs = {slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "ReduceScatter" [@g3] -> [@s3] {attrs = {reduction = "mean", slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "Copy" [@s1] -> [@o]
// CHECK-NEXT:    plan.instr "Wait" [@g2, @s2] -> [] {attrs = {slot = 2 : i64}}
// CHECK-NEXT:    plan.instr "Wait" [@g3, @s3] -> [] {attrs = {slot = 1 : i64}}
// CHECK-NEXT:  }

// With window 1 each reduce-scatter is waited before the next one starts.
// WINDOW1-LABEL: plan.program
// WINDOW1:         plan.instr "ReduceScatter" [@g1] -> [@s1] {attrs = {reduction = "mean", slot = 1 : i64}}
// WINDOW1-NEXT:    plan.instr "Fill" [] -> [@g2]
// WINDOW1-NEXT:    plan.instr "Wait" [@g1, @s1] -> [] {attrs = {slot = 1 : i64}}
// WINDOW1-NEXT:    plan.instr "ReduceScatter" [@g2] -> [@s2] {attrs = {reduction = "mean", slot = 1 : i64}}
// WINDOW1-NEXT:    plan.instr "Fill" [] -> [@g3]
// WINDOW1-NEXT:    plan.instr "Wait" [@g2, @s2] -> [] {attrs = {slot = 1 : i64}}
// WINDOW1-NEXT:    plan.instr "ReduceScatter" [@g3] -> [@s3] {attrs = {reduction = "mean", slot = 1 : i64}}
// WINDOW1-NEXT:    plan.instr "Copy" [@s1] -> [@o]
// WINDOW1-NEXT:    plan.instr "Wait" [@g3, @s3] -> [] {attrs = {slot = 1 : i64}}

// SYNC-LABEL: plan.program
// SYNC-NOT:     slot
// SYNC-NOT:     "Wait"
// SYNC:         plan.instr "Copy" [@s1] -> [@o]
plan.program attributes {backend = "cpu", world_size = 2 : ui32, zero_stage = 2 : ui32} {
  plan.buffer @mem.g1 "communication" {bytes = 32 : i64}
  plan.value @g1 : tensor<8xf32> in @mem.g1
  plan.buffer @mem.g2 "communication" {bytes = 32 : i64}
  plan.value @g2 : tensor<8xf32> in @mem.g2
  plan.buffer @mem.g3 "communication" {bytes = 32 : i64}
  plan.value @g3 : tensor<8xf32> in @mem.g3
  plan.buffer @mem.s "gradient" {bytes = 48 : i64, persistent}
  plan.value @s1 : tensor<4xf32> in @mem.s
  plan.value @s2 : tensor<4xf32> in @mem.s {byte_offset = 16 : i64}
  plan.value @s3 : tensor<4xf32> in @mem.s {byte_offset = 32 : i64}
  plan.buffer @mem.o "activation" {bytes = 16 : i64}
  plan.value @o : tensor<4xf32> in @mem.o
  plan.instr "Fill" [] -> [@g1] {attrs = {value = 1.0 : f32}}
  plan.instr "ReduceScatter" [@g1] -> [@s1] {attrs = {reduction = "mean"}}
  plan.instr "Fill" [] -> [@g2] {attrs = {value = 2.0 : f32}}
  plan.instr "ReduceScatter" [@g2] -> [@s2] {attrs = {reduction = "mean"}}
  plan.instr "Fill" [] -> [@g3] {attrs = {value = 3.0 : f32}}
  plan.instr "ReduceScatter" [@g3] -> [@s3] {attrs = {reduction = "mean"}}
  plan.instr "Copy" [@s1] -> [@o]
}

// -----

// Stage-3 style prefetch: gathers issued back to back form one group; each
// is waited right before the first instruction that reads its result. The
// gathered buffers are read later anyway, so no window applies.
// CHECK-LABEL: plan.program
// CHECK:         plan.instr "AllGather" [@s1] -> [@w1] {attrs = {group = 1 : i64, slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "AllGather" [@s2] -> [@w2] {attrs = {group = 1 : i64, slot = 2 : i64}}
// CHECK-NEXT:    plan.instr "Wait" [@s1, @w1] -> [] {attrs = {slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "Mul" [@x, @w1] -> [@h]
// CHECK-NEXT:    plan.instr "Wait" [@s2, @w2] -> [] {attrs = {slot = 2 : i64}}
// CHECK-NEXT:    plan.instr "Mul" [@h, @w2] -> [@y]
// In-place all-reduce, read at once: waited right after it starts.
// CHECK-NEXT:    plan.instr "AllReduce" [@y] -> [@y] {attrs = {reduction = "sum", slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "Wait" [@y, @y] -> [] {attrs = {slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "Copy" [@y] -> [@x]
plan.program attributes {backend = "cuda", world_size = 2 : ui32, zero_stage = 3 : ui32} {
  plan.buffer @mem.p "parameter" {bytes = 32 : i64, persistent}
  plan.value @s1 : tensor<2xf32> in @mem.p {rank_stride = 8 : i64}
  plan.value @s2 : tensor<2xf32> in @mem.p {byte_offset = 16 : i64, rank_stride = 8 : i64}
  plan.buffer @mem.x "input" {bytes = 16 : i64, persistent}
  plan.value @x : tensor<4xf32> in @mem.x
  plan.buffer @mem.w1 "communication" {bytes = 16 : i64}
  plan.value @w1 : tensor<4xf32> in @mem.w1
  plan.buffer @mem.w2 "communication" {bytes = 16 : i64}
  plan.value @w2 : tensor<4xf32> in @mem.w2
  plan.buffer @mem.h "activation" {bytes = 16 : i64}
  plan.value @h : tensor<4xf32> in @mem.h
  plan.buffer @mem.y "activation" {bytes = 16 : i64}
  plan.value @y : tensor<4xf32> in @mem.y
  plan.instr "AllGather" [@s1] -> [@w1]
  plan.instr "AllGather" [@s2] -> [@w2]
  plan.instr "Mul" [@x, @w1] -> [@h]
  plan.instr "Mul" [@h, @w2] -> [@y]
  plan.instr "AllReduce" [@y] -> [@y] {attrs = {reduction = "sum"}}
  plan.instr "Copy" [@y] -> [@x]
}

// -----

// A plan with an evaluation program: each stream waits for its own
// collectives (the step's last all-reduce completes before plan.evaluation,
// not in the evaluation), and a group never spans the two streams.
// CHECK-LABEL: plan.program
// CHECK:         plan.instr "AllReduce" [@l] -> [@l] {attrs = {reduction = "mean", slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "Wait" [@l, @l] -> [] {attrs = {slot = 1 : i64}}
// CHECK-NEXT:    plan.evaluation
// CHECK-NEXT:    plan.instr "AllGather" [@s] -> [@w] {attrs = {slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "Wait" [@s, @w] -> [] {attrs = {slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "ReduceSum" [@w] -> [@e]
// CHECK-NEXT:    plan.instr "AllReduce" [@e] -> [@e] {attrs = {reduction = "mean", slot = 1 : i64}}
// CHECK-NEXT:    plan.instr "Wait" [@e, @e] -> [] {attrs = {slot = 1 : i64}}
// CHECK-NEXT:    plan.loss @l
plan.program attributes {backend = "cuda", world_size = 2 : ui32, zero_stage = 3 : ui32} {
  plan.buffer @mem.p "parameter" {bytes = 16 : i64, persistent}
  plan.value @s : tensor<2xf32> in @mem.p {rank_stride = 8 : i64}
  plan.buffer @mem.w "communication" {bytes = 16 : i64}
  plan.value @w : tensor<4xf32> in @mem.w
  plan.buffer @mem.l "activation" {bytes = 4 : i64, persistent}
  plan.value @l : tensor<f32> in @mem.l
  plan.buffer @mem.e "activation" {bytes = 4 : i64, persistent}
  plan.value @e : tensor<f32> in @mem.e
  plan.instr "Fill" [] -> [@l] {attrs = {value = 1.0 : f32}}
  plan.instr "AllReduce" [@l] -> [@l] {attrs = {reduction = "mean"}}
  plan.evaluation
  plan.instr "AllGather" [@s] -> [@w]
  plan.instr "ReduceSum" [@w] -> [@e] {attrs = {axes = array<i64: 0>, keepdims = false}}
  plan.instr "AllReduce" [@e] -> [@e] {attrs = {reduction = "mean"}}
  plan.loss @l
  plan.loss @e {eval}
}

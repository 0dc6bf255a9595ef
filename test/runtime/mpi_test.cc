// Collectives and a sharded plan over MPI; run as
// `mpirun -np 3 --oversubscribe mpi_test`.
#include <gtest/gtest.h>

#include "test_plans.h"
#include "zero/mpi_communicator.h"

namespace zero {
namespace {

Communicator* g_comm = nullptr;

TEST(Mpi, AllReduce) {
  const int n = g_comm->size(), r = g_comm->rank();
  std::vector<float> x = {float(r), float(r * 2 + 1), 1.f}, y(3);
  ASSERT_TRUE(g_comm->all_reduce(x.data(), y.data(), 3, Reduction::Sum).ok());
  const float s = float(n * (n - 1) / 2);
  EXPECT_EQ(y, (std::vector<float>{s, 2 * s + float(n), float(n)}));
  ASSERT_TRUE(g_comm->all_reduce(x.data(), x.data(), 3, Reduction::Mean).ok());  // in place
  EXPECT_FLOAT_EQ(x[0], s / float(n));
  EXPECT_FLOAT_EQ(x[2], 1.f);
}

TEST(Mpi, ReduceScatter) {
  const int n = g_comm->size(), r = g_comm->rank();
  const size_t s = 2;
  std::vector<float> x(s * size_t(n));
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i) + float(r);
  // chunk r element k: sum over ranks q of (r*s + k + q)
  const auto want = [&](size_t k, float scale) {
    return (float(n) * float(size_t(r) * s + k) + float(n * (n - 1) / 2)) * scale;
  };
  std::vector<float> y(s);
  ASSERT_TRUE(g_comm->reduce_scatter(x.data(), y.data(), s, Reduction::Sum).ok());
  for (size_t k = 0; k < s; ++k) EXPECT_FLOAT_EQ(y[k], want(k, 1.f));
  // In place: the result lands in x's own chunk r; other chunks may change.
  ASSERT_TRUE(g_comm->reduce_scatter(x.data(), x.data() + size_t(r) * s, s, Reduction::Mean).ok());
  for (size_t k = 0; k < s; ++k) EXPECT_FLOAT_EQ(x[size_t(r) * s + k], want(k, 1.f / float(n)));
}

TEST(Mpi, AllGather) {
  const int n = g_comm->size(), r = g_comm->rank();
  std::vector<float> mine = {float(r), float(10 * r)}, all(2 * size_t(n), -1.f);
  ASSERT_TRUE(g_comm->all_gather(mine.data(), all.data(), 2).ok());
  for (int q = 0; q < n; ++q) {
    EXPECT_EQ(all[2 * size_t(q)], float(q));
    EXPECT_EQ(all[2 * size_t(q) + 1], float(10 * q));
  }
  std::vector<float> inplace(2 * size_t(n), -1.f);
  inplace[2 * size_t(r)] = float(r);
  inplace[2 * size_t(r) + 1] = float(10 * r);
  ASSERT_TRUE(g_comm->all_gather(inplace.data() + 2 * r, inplace.data(), 2).ok());
  EXPECT_EQ(inplace, all);
}

// Nonblocking collectives in several slots at once, completed out of order,
// in place where the contract allows it, inside a group.
TEST(Mpi, AsyncCollectives) {
  const int n = g_comm->size(), r = g_comm->rank();
  using Kind = Communicator::Kind;
  ASSERT_TRUE(g_comm->reserve_slots(3).ok());
  std::vector<float> sum = {float(r), 1.f};
  std::vector<float> scatter(2 * size_t(n));
  for (size_t i = 0; i < scatter.size(); ++i) scatter[i] = float(i) + float(r);
  std::vector<float> gathered(size_t(n), -1.f);
  gathered[size_t(r)] = float(10 * r);
  ASSERT_TRUE(g_comm->group_begin().ok());
  ASSERT_TRUE(g_comm->start({Kind::AllReduce, sum.data(), sum.data(), 2, Reduction::Mean}, 1).ok());
  ASSERT_TRUE(g_comm->start({Kind::ReduceScatter, scatter.data(), scatter.data() + 2 * r, 2, Reduction::Sum}, 2).ok());
  ASSERT_TRUE(g_comm->start({Kind::AllGather, gathered.data() + r, gathered.data(), 1}, 3).ok());
  ASSERT_TRUE(g_comm->group_end().ok());
  ASSERT_TRUE(g_comm->wait(3).ok());
  ASSERT_TRUE(g_comm->wait(1).ok());
  ASSERT_TRUE(g_comm->wait(2).ok());
  EXPECT_FLOAT_EQ(sum[0], float(n - 1) / 2.f);
  EXPECT_FLOAT_EQ(sum[1], 1.f);
  for (size_t k = 0; k < 2; ++k)
    EXPECT_FLOAT_EQ(scatter[2 * size_t(r) + k], float(n) * float(2 * size_t(r) + k) + float(n * (n - 1) / 2));
  for (int q = 0; q < n; ++q) EXPECT_EQ(gathered[size_t(q)], float(10 * q));
  EXPECT_FALSE(g_comm->wait(1).ok());  // nothing in flight any more
  EXPECT_FALSE(g_comm->start({Kind::AllReduce, sum.data(), sum.data(), 2}, 99).ok());
}

// Sharded (ZeRO-3) and replicated data parallelism produce the same model,
// with synchronous and with asynchronous collectives.
TEST(Mpi, ShardedPlanMatchesReplicated) {
  std::vector<std::vector<float>> results;
  for (int variant = 0; variant < 4; ++variant) {
    test::LinRegOptions o;
    o.world_size = uint32_t(g_comm->size());
    o.features = 5;  // not a multiple of 3: exercises shard padding
    o.sharded = variant % 2 == 1;
    o.async = variant >= 2;
    const auto bytes = test::linreg_plan(o);
    std::unique_ptr<Session> s;
    Status st = Session::open_buffer(bytes.data(), bytes.size(), g_comm, default_allocator(), &s);
    ASSERT_TRUE(st.ok()) << st.message();
    for (int step = 0; step < 3; ++step) {
      std::vector<float> x(20), y(4);
      for (size_t i = 0; i < x.size(); ++i) x[i] = float((i * 7 + size_t(g_comm->rank()) * 3 + size_t(step)) % 11) / 10.f;
      for (size_t i = 0; i < y.size(); ++i) y[i] = float(i + size_t(g_comm->rank())) / 4.f;
      ASSERT_TRUE(s->bind_input("x", x.data(), DType::F32, {4, 5}).ok());
      ASSERT_TRUE(s->bind_input("y", y.data(), DType::F32, {4, 1}).ok());
      st = s->step();
      ASSERT_TRUE(st.ok()) << st.message();
    }
    std::vector<float> w;
    ASSERT_TRUE(s->read_parameter("W", &w).ok());
    ASSERT_EQ(w.size(), 5u);
    float loss = 0;
    ASSERT_TRUE(s->loss(&loss).ok());
    w.push_back(loss);
    results.push_back(w);
  }
  for (const auto& result : results)
    for (size_t i = 0; i < results[0].size(); ++i) EXPECT_NEAR(results[0][i], result[i], 1e-6);
}

}  // namespace
}  // namespace zero

int main(int argc, char** argv) {
  std::unique_ptr<zero::Communicator> comm;
  zero::Status st = zero::make_mpi_communicator(&argc, &argv, &comm);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.message().c_str());
    return 1;
  }
  zero::g_comm = comm.get();
  ::testing::InitGoogleTest(&argc, argv);
  if (comm->rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  float failed = RUN_ALL_TESTS() != 0 ? 1.f : 0.f;
  (void)comm->all_reduce(&failed, &failed, 1, zero::Reduction::Sum);
  if (failed != 0.f && comm->rank() == 0) std::fprintf(stderr, "mpi_test: failures on %g rank(s)\n", failed);
  return failed != 0.f ? 1 : 0;
}

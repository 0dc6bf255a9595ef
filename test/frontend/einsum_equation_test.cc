// EinsumEquation against numpy's einsum rules: terms, implicit outputs,
// ellipsis alignment, broadcasting and the errors.

#include "frontends/onnx/EinsumEquation.h"

#include <gtest/gtest.h>

namespace zero::frontend {
namespace {

using Labels = std::vector<EinsumLabel>;
constexpr EinsumLabel kE0 = kFirstEllipsisLabel, kE1 = kFirstEllipsisLabel + 1;

EinsumEquation parse(std::string_view equation, std::vector<int64_t> ranks) {
  std::string error;
  std::optional<EinsumEquation> parsed = parseEinsumEquation(equation, ranks, error);
  EXPECT_TRUE(parsed) << equation << ": " << error;
  return parsed.value_or(EinsumEquation{});
}

std::string parseError(std::string_view equation, std::vector<int64_t> ranks) {
  std::string error;
  EXPECT_FALSE(parseEinsumEquation(equation, ranks, error)) << equation;
  return error;
}

std::vector<int64_t> outputShape(std::string_view equation,
                                 std::vector<std::vector<int64_t>> shapes) {
  std::vector<int64_t> ranks;
  for (const auto &shape : shapes)
    ranks.push_back(int64_t(shape.size()));
  std::string error;
  std::optional<std::vector<int64_t>> shape = einsumOutputShape(parse(equation, ranks), shapes, error);
  EXPECT_TRUE(shape) << equation << ": " << error;
  return shape.value_or(std::vector<int64_t>{-1});
}

TEST(EinsumEquation, ExplicitTerms) {
  EinsumEquation eq = parse("bhid,bhjd->bhij", {4, 4});
  EXPECT_EQ(eq.inputs, (std::vector<Labels>{{'b', 'h', 'i', 'd'}, {'b', 'h', 'j', 'd'}}));
  EXPECT_EQ(eq.output, (Labels{'b', 'h', 'i', 'j'}));
  EXPECT_EQ(parse(" b i j , b j k -> b i k ", {3, 3}).output, (Labels{'b', 'i', 'k'}));
  EXPECT_EQ(parse("ij,ij->", {2, 2}).output, Labels{});
}

TEST(EinsumEquation, ImplicitOutputIsTheSingleLettersInAsciiOrder) {
  EXPECT_EQ(parse("ij,jk", {2, 2}).output, (Labels{'i', 'k'}));
  EXPECT_EQ(parse("ba", {2}).output, (Labels{'a', 'b'}));
  EXPECT_EQ(parse("bA", {2}).output, (Labels{'A', 'b'}));
  EXPECT_EQ(parse("i,i", {1, 1}).output, Labels{});
  EXPECT_EQ(parse("ii", {2}).output, Labels{});
  EXPECT_EQ(parse("...ij,...jk", {4, 2}).output, (Labels{kE0, kE1, 'i', 'k'}));
}

TEST(EinsumEquation, EllipsesAlignToTheRight) {
  EinsumEquation eq = parse("...ij,j...->...i", {4, 2});
  EXPECT_EQ(eq.inputs, (std::vector<Labels>{{kE0, kE1, 'i', 'j'}, {'j', kE1}}));
  EXPECT_EQ(eq.output, (Labels{kE0, kE1, 'i'}));
  EXPECT_EQ(parse("...->...", {0}).output, Labels{});
}

TEST(EinsumEquation, OutputShapes) {
  EXPECT_EQ(outputShape("bn,anm,bm->ba", {{2, 3}, {4, 3, 5}, {2, 5}}), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(outputShape("...ij->...ji", {{7, 2, 3}}), (std::vector<int64_t>{7, 3, 2}));
  EXPECT_EQ(outputShape("i,j->ij", {{3}, {4}}), (std::vector<int64_t>{3, 4}));
  // Size 1 broadcasts, for ellipsis dimensions and letters alike.
  EXPECT_EQ(outputShape("...ij,...jk", {{2, 1, 3, 4}, {5, 4, 6}}), (std::vector<int64_t>{2, 5, 3, 6}));
  EXPECT_EQ(outputShape("bi,bi->bi", {{1, 3}, {4, 3}}), (std::vector<int64_t>{4, 3}));
}

TEST(EinsumEquation, Errors) {
  EXPECT_EQ(parseError("ij,jk->ik", {2}), "2 input terms for 1 operands");
  EXPECT_EQ(parseError("ijk->i", {2}), "term 'ijk' has 3 subscripts for operand 0 of rank 2");
  EXPECT_EQ(parseError("ij...k->i", {2}), "term 'ij...k' has 3 subscripts for operand 0 of rank 2");
  EXPECT_EQ(parseError("i1->i", {2}), "invalid character '1' (subscripts are letters)");
  EXPECT_EQ(parseError("i.j->i", {2}), "'.' outside an ellipsis '...'");
  EXPECT_EQ(parseError("...i...->i", {2}), "a term has more than one '...'");
  EXPECT_EQ(parseError("ij->ii", {2}), "output subscript 'i' occurs more than once");
  EXPECT_EQ(parseError("ij->k", {2}), "output subscript 'k' is in no input term");
  EXPECT_EQ(parseError("...i->i", {3}), "the inputs' '...' covers 2 dimensions but the output has no '...'");
  EXPECT_EQ(parseError("i->i->i", {1}), "more than one '->'");
  std::string error;
  EXPECT_FALSE(einsumOutputShape(parse("ij,jk->ik", {2, 2}), {{2, 3}, {4, 5}}, error));
  EXPECT_EQ(error, "subscript 'j' has sizes 3 and 4");
}

} // namespace
} // namespace zero::frontend

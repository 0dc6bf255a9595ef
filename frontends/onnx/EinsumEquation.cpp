//===- EinsumEquation.cpp -------------------------------------------------===//

#include "frontends/onnx/EinsumEquation.h"

#include <algorithm>
#include <cctype>

namespace zero::frontend {

namespace {

bool isLabelLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/// One term's letters before and after its "...", if it has one.
struct Term {
  std::string before, after;
  bool ellipsis = false;

  size_t letters() const { return before.size() + after.size(); }
};

std::optional<Term> parseTerm(std::string_view text, std::string &error) {
  Term term;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (isLabelLetter(c)) {
      (term.ellipsis ? term.after : term.before).push_back(c);
      continue;
    }
    if (c == '.' && text.substr(i, 3) == "...") {
      if (term.ellipsis) {
        error = "a term has more than one '...'";
        return std::nullopt;
      }
      term.ellipsis = true;
      i += 2;
      continue;
    }
    error = c == '.' ? "'.' outside an ellipsis '...'"
                     : std::string("invalid character '") + c + "' (subscripts are letters)";
    return std::nullopt;
  }
  return term;
}

/// The labels of a term whose "..." covers `covered` of the `total`
/// ellipsis dimensions (the last ones: they align to the right).
std::vector<EinsumLabel> labelsOf(const Term &term, int64_t covered, int64_t total) {
  std::vector<EinsumLabel> labels(term.before.begin(), term.before.end());
  for (int64_t j = 0; j < covered; ++j)
    labels.push_back(kFirstEllipsisLabel + int(total - covered + j));
  labels.insert(labels.end(), term.after.begin(), term.after.end());
  return labels;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i)
    if (i == text.size() || text[i] == separator) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  return parts;
}

} // namespace

std::string EinsumEquation::spell(EinsumLabel label) {
  return label >= kFirstEllipsisLabel ? "..." : std::string(1, char(label));
}

std::optional<EinsumEquation> parseEinsumEquation(std::string_view equation,
                                                  const std::vector<int64_t> &ranks,
                                                  std::string &error) {
  std::string compact;
  for (char c : equation)
    if (!std::isspace(static_cast<unsigned char>(c)))
      compact.push_back(c);
  std::string_view text = compact;
  size_t arrow = text.find("->");
  std::string_view lhs = text.substr(0, arrow);
  std::optional<std::string_view> rhs;
  if (arrow != std::string_view::npos) {
    rhs = text.substr(arrow + 2);
    if (rhs->find("->") != std::string_view::npos) {
      error = "more than one '->'";
      return std::nullopt;
    }
  }
  std::vector<std::string_view> termTexts = split(lhs, ',');
  if (termTexts.size() != ranks.size()) {
    error = std::to_string(termTexts.size()) + " input terms for " +
            std::to_string(ranks.size()) + " operands";
    return std::nullopt;
  }

  std::vector<Term> terms;
  int64_t ellipsisRank = 0;
  for (size_t i = 0; i < termTexts.size(); ++i) {
    std::optional<Term> term = parseTerm(termTexts[i], error);
    if (!term)
      return std::nullopt;
    int64_t letters = int64_t(term->letters());
    if (term->ellipsis ? letters > ranks[i] : letters != ranks[i]) {
      error = "term '" + std::string(termTexts[i]) + "' has " + std::to_string(letters) +
              " subscripts for operand " + std::to_string(i) + " of rank " +
              std::to_string(ranks[i]);
      return std::nullopt;
    }
    if (term->ellipsis)
      ellipsisRank = std::max(ellipsisRank, ranks[i] - letters);
    terms.push_back(std::move(*term));
  }

  EinsumEquation result;
  int occurrences[kFirstEllipsisLabel] = {};
  for (size_t i = 0; i < terms.size(); ++i) {
    int64_t covered = terms[i].ellipsis ? ranks[i] - int64_t(terms[i].letters()) : 0;
    result.inputs.push_back(labelsOf(terms[i], covered, ellipsisRank));
    for (EinsumLabel label : result.inputs.back())
      if (label < kFirstEllipsisLabel)
        ++occurrences[label];
  }

  if (!rhs) {
    // Implicit output: the ellipsis dimensions, then the letters that occur
    // once, in ASCII order.
    for (int64_t j = 0; j < ellipsisRank; ++j)
      result.output.push_back(kFirstEllipsisLabel + int(j));
    for (EinsumLabel label = 0; label < kFirstEllipsisLabel; ++label)
      if (occurrences[label] == 1)
        result.output.push_back(label);
    return result;
  }
  std::optional<Term> out = parseTerm(*rhs, error);
  if (!out)
    return std::nullopt;
  if (ellipsisRank > 0 && !out->ellipsis) {
    // As numpy: the ellipsis dimensions are not summed implicitly.
    error = "the inputs' '...' covers " + std::to_string(ellipsisRank) +
            (ellipsisRank == 1 ? " dimension" : " dimensions") + " but the output has no '...'";
    return std::nullopt;
  }
  result.output = labelsOf(*out, ellipsisRank, ellipsisRank);
  std::string seen;
  for (char letter : out->before + out->after) {
    if (seen.find(letter) != std::string::npos) {
      error = std::string("output subscript '") + letter + "' occurs more than once";
      return std::nullopt;
    }
    if (!occurrences[int(letter)]) {
      error = std::string("output subscript '") + letter + "' is in no input term";
      return std::nullopt;
    }
    seen.push_back(letter);
  }
  return result;
}

std::optional<std::vector<int64_t>>
einsumLabelSizes(const EinsumEquation &equation, const std::vector<std::vector<int64_t>> &shapes,
                 std::string &error) {
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < equation.inputs.size(); ++i) {
    const std::vector<EinsumLabel> &labels = equation.inputs[i];
    if (i >= shapes.size() || shapes[i].size() != labels.size()) {
      error = "operand " + std::to_string(i) + " does not have the equation's rank";
      return std::nullopt;
    }
    for (size_t d = 0; d < labels.size(); ++d) {
      if (size_t(labels[d]) >= sizes.size())
        sizes.resize(labels[d] + 1, -1);
      int64_t &size = sizes[labels[d]];
      int64_t dim = shapes[i][d];
      if (size == -1 || size == 1)
        size = dim;
      else if (dim != size && dim != 1) {
        error = "subscript '" + EinsumEquation::spell(labels[d]) + "' has sizes " +
                std::to_string(size) + " and " + std::to_string(dim);
        return std::nullopt;
      }
    }
  }
  return sizes;
}

std::optional<std::vector<int64_t>>
einsumOutputShape(const EinsumEquation &equation, const std::vector<std::vector<int64_t>> &shapes,
                  std::string &error) {
  std::optional<std::vector<int64_t>> sizes = einsumLabelSizes(equation, shapes, error);
  if (!sizes)
    return std::nullopt;
  std::vector<int64_t> shape;
  for (EinsumLabel label : equation.output)
    shape.push_back((*sizes)[label]);
  return shape;
}

} // namespace zero::frontend

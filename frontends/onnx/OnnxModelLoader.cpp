//===- OnnxModelLoader.cpp ------------------------------------------------===//

#include "frontends/onnx/OnnxModelLoader.h"
#include "frontends/onnx/EinsumEquation.h"
#include "frontends/onnx/SupportedOps.h"
#include "zero/files.h"

#include <onnx/defs/function.h>
#include <onnx/defs/parser.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace zero::frontend {

namespace {

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool isControl(char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }

/// Errors are one line of text, whatever bytes the names in them hold.
std::string oneLine(std::string message) {
  std::replace_if(message.begin(), message.end(), isControl, ' ');
  return message;
}

/// Names end up in diagnostics, one line each, and in the plan.
bool hasControl(const std::string &name) {
  return std::any_of(name.begin(), name.end(), isControl);
}

std::string typeName(::onnx::AttributeProto::AttributeType type) {
  return ::onnx::AttributeProto::AttributeType_IsValid(type)
             ? ::onnx::AttributeProto::AttributeType_Name(type)
             : "type " + std::to_string(static_cast<int>(type));
}

/// ONNX's schemas with every data propagation function guarded: ONNX 1.12's
/// Shape-15 reads its input's type without checking there is one, and there
/// is none after shape inference failed on the node computing it (a Split
/// whose sizes do not add up), which it skips to carry on with the next node.
/// "ai.onnx" names the default domain, as zero reads it.
class GuardedSchemaRegistry : public ::onnx::ISchemaRegistry {
public:
  const ::onnx::OpSchema *GetSchema(const std::string &key, const int maxInclusiveVersion,
                                    const std::string &domain) const override {
    const ::onnx::OpSchema *schema = ::onnx::OpSchemaRegistry::Schema(
        key, maxInclusiveVersion, domain == "ai.onnx" ? ::onnx::ONNX_DOMAIN : domain);
    if (schema && key == "ConstantOfShape" && schema->domain() == ::onnx::ONNX_DOMAIN)
      return withConstantOfShapeData(schema);
    if (schema && key == "Concat" && schema->domain() == ::onnx::ONNX_DOMAIN &&
        schema->has_data_propagation_function())
      return withConcatData(schema);
    if (schema && (key == "Equal" || key == "Where") && schema->domain() == ::onnx::ONNX_DOMAIN &&
        !schema->has_data_propagation_function())
      return withSelectData(schema, key == "Where");
    if (schema && key == "Reshape" && schema->domain() == ::onnx::ONNX_DOMAIN &&
        !schema->has_data_propagation_function())
      return withReshapeData(schema);
    if (schema && key == "TopK" && schema->domain() == ::onnx::ONNX_DOMAIN &&
        maxInclusiveVersion >= 10)
      return withPropagatedK(schema);
    if (schema && key == "Einsum" && schema->domain() == ::onnx::ONNX_DOMAIN)
      return withEinsumShape(schema);
    if (!schema || !schema->has_data_propagation_function())
      return schema;
    std::unique_ptr<::onnx::OpSchema> &guarded = guardedSchemas[schema];
    if (!guarded) {
      guarded = std::make_unique<::onnx::OpSchema>(*schema);
      guarded->PartialDataPropagationFunction(
          [propagate = schema->GetDataPropagationFunction()](
              ::onnx::DataPropagationContext &context) {
            // Input 0 is never optional where ONNX propagates data.
            if (context.getNumInputs() > 0 && context.getInputType(0))
              propagate(context);
          });
    }
    return guarded.get();
  }

private:
  /// ConstantOfShape with the data propagation ONNX 1.12 lacks: an INT64
  /// fill of a known 1-D shape is known data, so the Expand that PyTorch
  /// writes for Tensor.repeat (Expand(x, ConstantOfShape(Shape(repeats), 1)))
  /// gets its static type.
  const ::onnx::OpSchema *withConstantOfShapeData(const ::onnx::OpSchema *schema) const {
    std::unique_ptr<::onnx::OpSchema> &guarded = guardedSchemas[schema];
    if (!guarded) {
      guarded = std::make_unique<::onnx::OpSchema>(*schema);
      guarded->PartialDataPropagationFunction([](::onnx::DataPropagationContext &context) {
        const ::onnx::TensorShapeProto *shape =
            context.getNumInputs() > 0 && context.getInputType(0) ? context.getInputData(0)
                                                                  : nullptr;
        const ::onnx::AttributeProto *value = context.getAttribute("value");
        if (!shape || shape->dim_size() != 1 || !shape->dim(0).has_dim_value() || !value ||
            !value->has_t() || value->t().data_type() != ::onnx::TensorProto::INT64)
          return;
        const ::onnx::TensorProto &t = value->t();
        int64_t fill;
        if (t.int64_data_size() == 1)
          fill = t.int64_data(0);
        else if (t.raw_data().size() == sizeof(int64_t))
          std::memcpy(&fill, t.raw_data().data(), sizeof(int64_t));
        else
          return;
        int64_t count = shape->dim(0).dim_value();
        if (count < 0 || count > 64) // shapes, not data
          return;
        ::onnx::TensorShapeProto data;
        for (int64_t i = 0; i < count; ++i)
          data.add_dim()->set_dim_value(fill);
        context.addOutputData(0, std::move(data));
      });
    }
    return guarded.get();
  }

  /// Concat of known 1-D data where some inputs are empty: ONNX 1.12 gives
  /// an empty Slice of a shape no data, so the shape PyTorch builds for
  /// index_put's values (Concat(Shape(idx), Shape(x)[k:])) stayed unknown.
  const ::onnx::OpSchema *withConcatData(const ::onnx::OpSchema *schema) const {
    std::unique_ptr<::onnx::OpSchema> &guarded = guardedSchemas[schema];
    if (!guarded) {
      guarded = std::make_unique<::onnx::OpSchema>(*schema);
      guarded->PartialDataPropagationFunction([propagate = schema->GetDataPropagationFunction()](
                                                  ::onnx::DataPropagationContext &context) {
        ::onnx::TensorShapeProto out;
        for (size_t i = 0; i < context.getNumInputs(); ++i) {
          const ::onnx::TypeProto *type = context.getInputType(i);
          if (!type)
            return;
          const auto &shape = type->tensor_type().shape();
          bool empty = type->tensor_type().has_shape() && shape.dim_size() == 1 &&
                       shape.dim(0).has_dim_value() && shape.dim(0).dim_value() == 0;
          const ::onnx::TensorShapeProto *data = empty ? nullptr : context.getInputData(i);
          if (!empty && !data)
            return propagate(context);
          for (int j = 0; data && j < data->dim_size(); ++j)
            *out.add_dim() = data->dim(j);
        }
        if (out.dim_size() == 0)
          return propagate(context);
        context.addOutputData(0, std::move(out));
      });
    }
    return guarded.get();
  }

  /// Equal and Where on known 1-D data, numpy-broadcast: the shape idiom
  /// PyTorch writes for indexing (`x[:, idx] = v`, index_put),
  /// Where(Equal(s, ConstantOfShape(Shape(s), 1) * -1), ConstantOfShape(...), s),
  /// then has a known value, and the Expand that reads it a static type.
  const ::onnx::OpSchema *withSelectData(const ::onnx::OpSchema *schema, bool where) const {
    std::unique_ptr<::onnx::OpSchema> &guarded = guardedSchemas[schema];
    if (!guarded) {
      guarded = std::make_unique<::onnx::OpSchema>(*schema);
      guarded->PartialDataPropagationFunction([where](::onnx::DataPropagationContext &context) {
        const size_t n = where ? 3 : 2;
        std::vector<const ::onnx::TensorShapeProto *> in;
        int size = 1;
        for (size_t i = 0; i < n; ++i) {
          const ::onnx::TensorShapeProto *data =
              context.getNumInputs() > i && context.getInputType(i) ? context.getInputData(i)
                                                                    : nullptr;
          if (!data || data->dim_size() < 1 ||
              (data->dim_size() != 1 && size != 1 && data->dim_size() != size))
            return;
          size = std::max(size, data->dim_size());
          in.push_back(data);
        }
        auto at = [&](size_t i, int j) -> const ::onnx::TensorShapeProto_Dimension & {
          return in[i]->dim(in[i]->dim_size() == 1 ? 0 : j);
        };
        ::onnx::TensorShapeProto out;
        for (int j = 0; j < size; ++j) {
          if (where) {
            if (!at(0, j).has_dim_value())
              return;
            *out.add_dim() = at(0, j).dim_value() ? at(1, j) : at(2, j);
          } else {
            if (!at(0, j).has_dim_value() || !at(1, j).has_dim_value())
              return;
            out.add_dim()->set_dim_value(at(0, j).dim_value() == at(1, j).dim_value());
          }
        }
        context.addOutputData(0, std::move(out));
      });
    }
    return guarded.get();
  }

  /// Reshape passing known data through where it reshapes a scalar or a
  /// 1-D tensor into one (data is a list either way): the K that PyTorch
  /// writes for torch.topk is Reshape(Constant(k), [1]).
  const ::onnx::OpSchema *withReshapeData(const ::onnx::OpSchema *schema) const {
    std::unique_ptr<::onnx::OpSchema> &guarded = guardedSchemas[schema];
    if (!guarded) {
      guarded = std::make_unique<::onnx::OpSchema>(*schema);
      guarded->PartialDataPropagationFunction([](::onnx::DataPropagationContext &context) {
        // The output's type is not known yet here: the target shape says.
        auto known = [&](size_t i) {
          return context.getNumInputs() > i && context.getInputType(i) ? context.getInputData(i)
                                                                       : nullptr;
        };
        const ::onnx::TensorShapeProto *data = known(0), *shape = known(1);
        if (!data || !shape || shape->dim_size() > 1)
          return;
        bool toScalar = shape->dim_size() == 0 && data->dim_size() == 1;
        bool toList = shape->dim_size() == 1 && shape->dim(0).has_dim_value() &&
                      (shape->dim(0).dim_value() == -1 ||
                       shape->dim(0).dim_value() == data->dim_size());
        if (toScalar || toList)
          context.addOutputData(0, ::onnx::TensorShapeProto(*data));
      });
    }
    return guarded.get();
  }

  /// TopK whose K is known only through data propagation (ONNX 1.12 reads
  /// a constant K alone): its outputs get the input's shape with K along
  /// the axis.
  const ::onnx::OpSchema *withPropagatedK(const ::onnx::OpSchema *schema) const {
    std::unique_ptr<::onnx::OpSchema> &guarded = guardedSchemas[schema];
    if (!guarded) {
      guarded = std::make_unique<::onnx::OpSchema>(*schema);
      guarded->TypeAndShapeInferenceFunction([infer = schema->GetTypeAndShapeInferenceFunction()](
                                                 ::onnx::InferenceContext &context) {
        infer(context);
        if (context.getNumInputs() < 2 || context.getNumOutputs() < 2 || context.getInputData(1))
          return;
        const ::onnx::TensorShapeProto *k = context.getSymbolicInput(1);
        const ::onnx::TypeProto *in = context.getInputType(0);
        if (!k || k->dim_size() != 1 || !k->dim(0).has_dim_value() || !in ||
            !in->tensor_type().has_shape())
          return;
        const auto &shape = in->tensor_type().shape();
        const ::onnx::AttributeProto *axisAttr = context.getAttribute("axis");
        int64_t rank = shape.dim_size(), axis = axisAttr ? axisAttr->i() : -1;
        if (axis < 0)
          axis += rank;
        if (axis < 0 || axis >= rank)
          return;
        for (size_t i = 0; i < 2; ++i) {
          ::onnx::TypeProto *out = context.getOutputType(i);
          if (!out)
            continue;
          auto *outShape = out->mutable_tensor_type()->mutable_shape();
          *outShape = shape;
          outShape->mutable_dim(axis)->Clear();
          outShape->mutable_dim(axis)->set_dim_value(k->dim(0).dim_value());
        }
      });
    }
    return guarded.get();
  }

  /// Einsum with its output's dimensions, which ONNX 1.12 leaves unknown
  /// (it infers the rank alone, and rejects "..." of different ranks, which
  /// broadcast), from the equation and static input shapes. An equation
  /// that does not fit is left to ONNX's inference, and to the importer to
  /// report.
  const ::onnx::OpSchema *withEinsumShape(const ::onnx::OpSchema *schema) const {
    std::unique_ptr<::onnx::OpSchema> &guarded = guardedSchemas[schema];
    if (!guarded) {
      guarded = std::make_unique<::onnx::OpSchema>(*schema);
      guarded->TypeAndShapeInferenceFunction([infer = schema->GetTypeAndShapeInferenceFunction()](
                                                 ::onnx::InferenceContext &context) {
        std::optional<std::vector<int64_t>> shape = einsumShape(context);
        ::onnx::TypeProto *out = context.getNumOutputs() > 0 ? context.getOutputType(0) : nullptr;
        if (!shape || !out)
          return infer(context);
        out->mutable_tensor_type()->set_elem_type(context.getInputType(0)->tensor_type().elem_type());
        auto *outShape = out->mutable_tensor_type()->mutable_shape();
        outShape->Clear();
        for (int64_t size : *shape)
          outShape->add_dim()->set_dim_value(size);
      });
    }
    return guarded.get();
  }

  static std::optional<std::vector<int64_t>> einsumShape(::onnx::InferenceContext &context) {
    const ::onnx::AttributeProto *equation = context.getAttribute("equation");
    if (!equation || context.getNumInputs() == 0)
      return std::nullopt;
    std::vector<std::vector<int64_t>> shapes;
    std::vector<int64_t> ranks;
    for (size_t i = 0; i < context.getNumInputs(); ++i) {
      const ::onnx::TypeProto *in = context.getInputType(i);
      if (!in || !in->tensor_type().has_shape())
        return std::nullopt;
      std::vector<int64_t> &shape = shapes.emplace_back();
      for (const auto &dim : in->tensor_type().shape().dim()) {
        if (!dim.has_dim_value())
          return std::nullopt;
        shape.push_back(dim.dim_value());
      }
      ranks.push_back(int64_t(shape.size()));
    }
    std::string error;
    std::optional<EinsumEquation> parsed = parseEinsumEquation(equation->s(), ranks, error);
    return parsed ? einsumOutputShape(*parsed, shapes, error) : std::nullopt;
  }

  mutable std::map<const ::onnx::OpSchema *, std::unique_ptr<::onnx::OpSchema>> guardedSchemas;
};

/// The first name in the value's type (its symbolic dimensions) that holds
/// control characters, or null.
const std::string *badDimension(const ::onnx::ValueInfoProto &info) {
  if (!info.type().has_tensor_type())
    return nullptr;
  for (const auto &dim : info.type().tensor_type().shape().dim())
    if (hasControl(dim.dim_param()))
      return &dim.dim_param();
  return nullptr;
}

/// Bytes per element of a tensor's raw data; 0 for STRING and invalid types.
int64_t rawElementBytes(int32_t type) {
  using T = ::onnx::TensorProto;
  switch (type) {
  case T::COMPLEX128:
    return 16;
  case T::DOUBLE:
  case T::INT64:
  case T::UINT64:
  case T::COMPLEX64:
    return 8;
  case T::FLOAT:
  case T::INT32:
  case T::UINT32:
    return 4;
  case T::INT16:
  case T::UINT16:
  case T::FLOAT16:
  case T::BFLOAT16:
    return 2;
  case T::INT8:
  case T::UINT8:
  case T::BOOL:
    return 1;
  default:
    return 0;
  }
}

/// What is wrong with a tensor (an initializer or a Constant's value), empty
/// if nothing: ONNX shape inference reads constants without checking that
/// their data is all there, and the importer computes sizes from their
/// dimensions.
std::string tensorProblem(const ::onnx::TensorProto &tensor, bool mapped) {
  using T = ::onnx::TensorProto;
  int64_t elements = 1;
  for (int64_t d : tensor.dims()) {
    if (d < 0)
      return "has a negative dimension";
    if (__builtin_mul_overflow(elements, d, &elements) || elements > (int64_t(1) << 40))
      return "has more than 2^40 elements";
  }
  // The loader checked the sizes of the external data it mapped.
  if (tensor.data_location() == T::EXTERNAL)
    return mapped ? "" : "uses external data that was not loaded with the model";
  if (tensor.has_segment())
    return "is stored in segments, which is not supported";
  // Bytes per element in raw_data; the typed field and its entries per element.
  int64_t bytes = rawElementBytes(tensor.data_type()), perElement = 1, entries = 0;
  switch (tensor.data_type()) {
  case T::FLOAT:
  case T::COMPLEX64:
    perElement = tensor.data_type() == T::FLOAT ? 1 : 2;
    entries = tensor.float_data_size();
    break;
  case T::DOUBLE:
  case T::COMPLEX128:
    perElement = tensor.data_type() == T::DOUBLE ? 1 : 2;
    entries = tensor.double_data_size();
    break;
  case T::INT64:
    entries = tensor.int64_data_size();
    break;
  case T::UINT32:
  case T::UINT64:
    entries = tensor.uint64_data_size();
    break;
  case T::INT32:
  case T::INT16:
  case T::UINT16:
  case T::FLOAT16:
  case T::BFLOAT16:
  case T::INT8:
  case T::UINT8:
  case T::BOOL:
    entries = tensor.int32_data_size();
    break;
  case T::STRING:
    if (tensor.has_raw_data())
      return "is a STRING tensor with raw data";
    entries = tensor.string_data_size();
    break;
  default:
    return "has no valid element type";
  }
  if (tensor.has_raw_data()) {
    if (static_cast<int64_t>(tensor.raw_data().size()) != elements * bytes)
      return "holds " + std::to_string(tensor.raw_data().size()) + " bytes, its type needs " +
             std::to_string(elements * bytes);
  } else if (entries != elements * perElement) {
    return "holds " + std::to_string(entries) + " values, its dimensions need " +
           std::to_string(elements * perElement);
  }
  return "";
}

bool hasFunctionBody(const ::onnx::OpSchema &schema) {
  return schema.HasFunction() || schema.HasContextDependentFunction();
}

/// The schema of the node's operator where zero implements it through its
/// ONNX function body (zero's table has no row for it at `opset` and the
/// schema has a body), else null.
const ::onnx::OpSchema *functionSchema(const ::onnx::NodeProto &node, int64_t opset) {
  if (!isDefaultDomain(node.domain()) || findSupportedOp(node.domain(), node.op_type(), opset))
    return nullptr;
  const ::onnx::OpSchema *schema = ::onnx::OpSchemaRegistry::Schema(
      node.op_type(), static_cast<int>(opset), ::onnx::ONNX_DOMAIN);
  return schema && hasFunctionBody(*schema) ? schema : nullptr;
}

/// Checks a node against the operator table and the operator's ONNX schema
/// at the model's opset; returns the problem, empty if none.
std::string checkNode(const ::onnx::NodeProto &node, int64_t opset, bool allowFunctions) {
  const std::string &op = node.op_type();
  for (const std::string *name : {&op, &node.name(), &node.domain()})
    if (hasControl(*name))
      return "name '" + *name + "' holds control characters";
  for (const auto &value : node.input())
    if (hasControl(value))
      return "input name '" + value + "' holds control characters";
  for (const auto &value : node.output())
    if (hasControl(value))
      return "output name '" + value + "' holds control characters";
  bool defaultDomain = isDefaultDomain(node.domain());
  const SupportedOp *supported = findSupportedOp(node.domain(), op, opset);
  // The ONNX schema of the operator at this opset (its arity and which
  // attributes exist); zero's table says which of those it implements.
  const ::onnx::OpSchema *schema =
      defaultDomain
          ? ::onnx::OpSchemaRegistry::Schema(op, static_cast<int>(opset), ::onnx::ONNX_DOMAIN)
          : nullptr;
  // An operator zero does not implement may still be a function of ones it
  // does (expandFunctions); its body is checked once expanded.
  bool function = !supported && allowFunctions && schema && hasFunctionBody(*schema);
  if (!supported && !function)
    return unsupportedOpMessage(node, opset);
  if (!schema)
    return "unsupported operator '" + op + "': ONNX opset " + std::to_string(opset) +
           " does not define it";

  auto arity = [](const char *what, int count, int min, int max) {
    std::string range = min == max ? std::to_string(min)
                        : max == std::numeric_limits<int>::max()
                            ? "at least " + std::to_string(min)
                            : std::to_string(min) + " to " + std::to_string(max);
    return "expects " + range + " " + what + ", got " + std::to_string(count);
  };
  if (node.input_size() < schema->min_input() || node.input_size() > schema->max_input())
    return arity("inputs", node.input_size(), schema->min_input(), schema->max_input());
  if (node.output_size() < schema->min_output() || node.output_size() > schema->max_output())
    return arity("outputs", node.output_size(), schema->min_output(), schema->max_output());
  // Only optional inputs may be left out (named ""); the importer reads
  // every other one.
  const auto &formal = schema->inputs();
  for (int i = 0; i < node.input_size(); ++i) {
    if (!node.input(i).empty() || formal.empty())
      continue;
    const auto &param = formal[std::min<size_t>(i, formal.size() - 1)];
    if (param.GetOption() != ::onnx::OpSchema::Optional)
      return "input " + std::to_string(i) + " ('" + param.GetName() + "') must not be empty";
  }
  // Only an optional first output (LSTM's Y) may be left out.
  const auto &formalOutputs = schema->outputs();
  bool firstOptional =
      !formalOutputs.empty() && formalOutputs[0].GetOption() == ::onnx::OpSchema::Optional;
  if (node.output_size() == 0 || (node.output(0).empty() && !firstOptional))
    return "the first output must not be empty";

  std::unordered_set<std::string> seen;
  for (const auto &attribute : node.attribute()) {
    const std::string &name = attribute.name();
    if (!seen.insert(name).second)
      return "attribute '" + name + "' is given twice";
    const OpAttribute *known = supported ? supported->findAttribute(name) : nullptr;
    if (supported && !known)
      return "attribute '" + name + "' of " + op + " is not supported";
    auto defined = schema->attributes().find(name);
    if (defined == schema->attributes().end())
      return "attribute '" + name + "' of " + op + " is not defined in ONNX opset " +
             std::to_string(opset);
    // A function's attributes: any its schema defines, typed as it says.
    auto expected = known ? known->type : defined->second.type;
    if (attribute.type() != expected)
      return attributeTypeError(node, attribute, expected);
    auto tooSmall = [&](int64_t v) { return known && v < known->minimum; };
    if ((attribute.type() == ::onnx::AttributeProto::INT && tooSmall(attribute.i())) ||
        std::any_of(attribute.ints().begin(), attribute.ints().end(), tooSmall))
      return "attribute '" + name + "' of " + op + " must be at least " +
             std::to_string(known->minimum);
    if (attribute.type() == ::onnx::AttributeProto::TENSOR) {
      if (hasControl(attribute.t().name()))
        return "tensor name '" + attribute.t().name() + "' holds control characters";
      if (std::string problem = tensorProblem(attribute.t(), /*mapped=*/false); !problem.empty())
        return "tensor '" + attribute.t().name() + "' " + problem;
    }
  }
  for (const auto &[name, attribute] : schema->attributes())
    if (attribute.required && !seen.count(name))
      return "attribute '" + name + "' of " + op + " is required";
  return "";
}

} // namespace

int64_t onnxOpset(const ::onnx::ModelProto &model) {
  int64_t opset = 0;
  for (const auto &import : model.opset_import())
    if (isDefaultDomain(import.domain()))
      opset = import.version();
  return opset;
}

std::string describeNode(const ::onnx::NodeProto &node, int64_t opset) {
  // Named by its first output that is not left out (LSTM's Y may be).
  auto output = std::find_if(node.output().begin(), node.output().end(),
                             [](const std::string &o) { return !o.empty(); });
  std::string name = !node.name().empty()            ? "node '" + node.name() + "'"
                     : output != node.output().end() ? "node producing '" + *output + "'"
                                                     : "unnamed node";
  return name + " (" + node.op_type() + ", opset " + std::to_string(opset) + ")";
}

std::string attributeTypeError(const ::onnx::NodeProto &node,
                               const ::onnx::AttributeProto &attribute,
                               ::onnx::AttributeProto::AttributeType expected) {
  return "attribute '" + attribute.name() + "' of " + node.op_type() + " must be " +
         typeName(expected) + ", got " + typeName(attribute.type());
}

namespace {

bool checkModel(const ::onnx::ModelProto &model, bool allowFunctions, std::string &error,
                const ExternalData *external) {
  int64_t opset = onnxOpset(model);
  if (opset < kMinOpset || opset > kMaxOpset) {
    error = "ONNX opset " + std::to_string(opset) + " is not supported (supported: " +
            std::to_string(kMinOpset) + " to " + std::to_string(kMaxOpset) + ")";
    return false;
  }
  const ::onnx::GraphProto &graph = model.graph();
  if (graph.output_size() == 0) {
    error = "the graph has no outputs; its first output must be the loss";
    return false;
  }
  if (graph.sparse_initializer_size() > 0) {
    error = "sparse initializers are not supported";
    return false;
  }
  for (const auto *infos : {&graph.input(), &graph.output(), &graph.value_info()})
    for (const auto &info : *infos) {
      const std::string *bad = hasControl(info.name()) ? &info.name() : badDimension(info);
      if (bad) {
        error = "name '" + *bad + "' holds control characters";
        return false;
      }
    }
  // Every value is defined once: a graph input, an initializer (which may
  // also be listed as a graph input, as IR versions before 4 require) or a
  // node output.
  std::unordered_set<std::string> defined, initializers;
  for (const auto &input : graph.input()) {
    if (input.name().empty() || !defined.insert(input.name()).second) {
      error = input.name().empty() ? "a graph input has no name"
                                   : "graph input '" + input.name() + "' is listed twice";
      return false;
    }
  }
  for (const auto &init : graph.initializer()) {
    if (hasControl(init.name())) {
      error = "initializer name '" + init.name() + "' holds control characters";
      return false;
    }
    bool mapped = external && external->find(init.name());
    if (std::string problem = tensorProblem(init, mapped); !problem.empty()) {
      error = "initializer '" + init.name() + "' " + problem;
      return false;
    }
    if (init.name().empty() || !initializers.insert(init.name()).second) {
      error = init.name().empty() ? "an initializer has no name"
                                  : "initializer '" + init.name() + "' is listed twice";
      return false;
    }
    defined.insert(init.name());
  }
  for (const auto &node : graph.node()) {
    std::string problem = checkNode(node, opset, allowFunctions);
    // Nodes come in topological order: a node reads only graph inputs,
    // initializers and outputs of nodes before it.
    for (int i = 0; problem.empty() && i < node.input_size(); ++i)
      if (!node.input(i).empty() && !defined.count(node.input(i)))
        problem = "input '" + node.input(i) +
                  "' is not a graph input, an initializer or an output of an earlier node";
    for (int i = 0; problem.empty() && i < node.output_size(); ++i)
      if (!node.output(i).empty() && !defined.insert(node.output(i)).second)
        problem = "output '" + node.output(i) + "' is already defined";
    if (!problem.empty()) {
      error = describeNode(node, opset) + ": " + problem;
      return false;
    }
  }
  for (const auto &output : graph.output()) {
    if (!defined.count(output.name())) {
      error = "graph output '" + output.name() + "' is not computed by the graph";
      return false;
    }
  }
  return true;
}

/// The types ONNX shape inference gave the graph's values.
std::unordered_map<std::string, ::onnx::TypeProto> valueTypes(const ::onnx::GraphProto &graph) {
  std::unordered_map<std::string, ::onnx::TypeProto> types;
  for (const auto *infos : {&graph.input(), &graph.value_info(), &graph.output()})
    for (const auto &info : *infos)
      types[info.name()] = info.type();
  for (const auto &init : graph.initializer()) {
    auto *tensor = types[init.name()].mutable_tensor_type();
    tensor->set_elem_type(init.data_type());
    for (int64_t dim : init.dims())
      tensor->mutable_shape()->add_dim()->set_dim_value(dim);
  }
  return types;
}

/// Replaces each node whose operator zero does not implement by the body of
/// its ONNX function (checkNode let only such nodes through), repeatedly, as
/// a body may use other functions: such operators need no code of their own.
/// Context-dependent bodies are built from the types inference gave the
/// node's inputs. Expanded names are prefixed by the node's first output,
/// which is unique, so plans stay deterministic.
bool expandFunctions(::onnx::ModelProto &model, bool &expandedAny, std::string &error) {
  int64_t opset = onnxOpset(model);
  ::onnx::GraphProto &graph = *model.mutable_graph();
  for (int depth = 0;; ++depth) {
    std::unordered_map<std::string, ::onnx::TypeProto> types = valueTypes(graph);
    ::onnx::GraphProto expanded;
    bool changed = false;
    for (const auto &node : graph.node()) {
      const ::onnx::OpSchema *schema = functionSchema(node, opset);
      if (!schema) { // a supported operator
        *expanded.add_node() = node;
        continue;
      }
      // The node with its schema's defaults for the attributes it leaves out,
      // which the body may refer to.
      ::onnx::NodeProto complete = node;
      for (const auto &entry : schema->attributes()) {
        const std::string &name = entry.first;
        bool given = std::any_of(node.attribute().begin(), node.attribute().end(),
                                 [&](const auto &a) { return a.name() == name; });
        const ::onnx::AttributeProto &fallback = entry.second.default_value;
        if (!given && fallback.type() != ::onnx::AttributeProto::UNDEFINED)
          *complete.add_attribute() = fallback;
      }
      ::onnx::FunctionProto body;
      if (schema->HasFunction()) {
        body = *schema->GetFunction();
      } else {
        std::vector<::onnx::TypeProto> inputTypes;
        for (const auto &input : node.input())
          inputTypes.push_back(types.count(input) ? types[input] : ::onnx::TypeProto());
        if (!schema->BuildContextDependentFunction(
                ::onnx::FunctionBodyBuildContextImpl(complete, inputTypes), body)) {
          error = describeNode(node, opset) + ": its ONNX function body could not be built";
          return false;
        }
      }
      for (const auto &inner : body.node()) {
        if (!findSupportedOp(inner.domain(), inner.op_type(), opset) &&
            !functionSchema(inner, opset)) {
          error = describeNode(node, opset) + ": unsupported operator '" + inner.op_type() +
                  "' in its ONNX function body";
          return false;
        }
      }
      ::onnx::FunctionExpandHelper(complete, body, expanded, node.output(0) + "/");
      changed = true;
    }
    if (!changed)
      return true;
    expandedAny = true;
    if (depth == 16) {
      error = "ONNX function bodies nest more than 16 deep";
      return false;
    }
    graph.mutable_node()->Swap(expanded.mutable_node());
  }
}

/// Tensors with fewer bytes of external data are read into the model, as
/// the ONNX library and the constant evaluator read raw data only; larger
/// float initializers (the weights) stay mapped.
constexpr int64_t kMappedMinBytes = 64 * 1024;

/// Whether `s` is a decimal number that fits in int64.
bool parseDecimal(const std::string &s, int64_t &value) {
  if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  value = std::stoll(s);
  return true;
}

/// ONNX requires an external data location relative to the model's
/// directory and inside it.
bool insideModelDirectory(const std::string &location) {
  if (location.empty() || location.front() == '/' || hasControl(location))
    return false;
  std::stringstream parts(location);
  for (std::string part; std::getline(parts, part, '/');)
    if (part == "..")
      return false;
  return true;
}

/// Loads the external data of one tensor (whose diagnostics name it as
/// `what`): into its raw data, or into `external` if `mayMap` and it is
/// large. Returns the problem, "" if none.
std::string loadExternalTensor(::onnx::TensorProto &tensor, bool mayMap,
                               const std::string &directory,
                               std::unordered_map<std::string, std::shared_ptr<MappedFile>> &files,
                               ExternalData &external) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto &entry : tensor.external_data()) {
    if (entry.key() == "location")
      location = entry.value();
    else if ((entry.key() == "offset" && !parseDecimal(entry.value(), offset)) ||
             (entry.key() == "length" && !parseDecimal(entry.value(), length)))
      return "has external data " + entry.key() + " '" + entry.value() + "', not a number";
  }
  if (!insideModelDirectory(location))
    return "has external data location '" + location +
           "', not a relative path inside the model's directory";
  int64_t elements = 1;
  for (int64_t d : tensor.dims())
    if (d < 0 || __builtin_mul_overflow(elements, d, &elements))
      return "has a negative or overflowing dimension";
  int64_t bytes = 0, elementBytes = rawElementBytes(tensor.data_type());
  if (elementBytes == 0 || __builtin_mul_overflow(elements, elementBytes, &bytes))
    return "has external data of an element type without raw data";
  if (length >= 0 && length != bytes)
    return "has external data length " + std::to_string(length) + ", its type needs " +
           std::to_string(bytes);
  std::shared_ptr<MappedFile> &file = files[location];
  if (!file) {
    file = std::make_shared<MappedFile>();
    if (Status status = file->open(directory + "/" + location, "external data file");
        !status.ok())
      return "cannot be read: " + status.message();
  }
  int64_t end = 0;
  if (__builtin_add_overflow(offset, bytes, &end) || end > static_cast<int64_t>(file->size()))
    return "needs bytes " + std::to_string(offset) + " to " + std::to_string(offset + bytes) +
           " of '" + location + "', which has " + std::to_string(file->size());
  const char *data = reinterpret_cast<const char *>(file->data()) + offset;
  // A mapping starts on a page, so an offset aligned for float is too.
  if (mayMap && tensor.data_type() == ::onnx::TensorProto::FLOAT && bytes >= kMappedMinBytes &&
      offset % alignof(float) == 0) {
    external.add(tensor.name(), {data, static_cast<size_t>(bytes), file});
    return "";
  }
  tensor.set_raw_data(data, bytes);
  tensor.clear_external_data();
  tensor.clear_data_location();
  return "";
}

/// Loads the external data of the graph's initializers and of its nodes'
/// tensor attributes, with locations relative to `directory`.
bool loadExternalData(::onnx::ModelProto &model, const std::string &directory,
                      ExternalData &external, std::string &error) {
  std::unordered_map<std::string, std::shared_ptr<MappedFile>> files;
  auto load = [&](::onnx::TensorProto &tensor, bool mayMap, const std::string &what) {
    if (tensor.data_location() != ::onnx::TensorProto::EXTERNAL)
      return true;
    std::string problem = loadExternalTensor(tensor, mayMap, directory, files, external);
    if (!problem.empty())
      error = what + " " + problem;
    return problem.empty();
  };
  ::onnx::GraphProto &graph = *model.mutable_graph();
  for (auto &init : *graph.mutable_initializer())
    if (!load(init, /*mayMap=*/true, "initializer '" + init.name() + "'"))
      return false;
  int64_t opset = onnxOpset(model);
  for (auto &node : *graph.mutable_node()) {
    for (auto &attribute : *node.mutable_attribute()) {
      std::string what = describeNode(node, opset) + ": tensor of attribute '" +
                         attribute.name() + "'";
      if (attribute.has_t() && !load(*attribute.mutable_t(), /*mayMap=*/false, what))
        return false;
      for (auto &tensor : *attribute.mutable_tensors())
        if (!load(tensor, /*mayMap=*/false, what))
          return false;
    }
  }
  return true;
}

/// Parses, loads external data relative to `directory` (when given), checks
/// and shape-infers.
bool parseAndCheck(const std::string &bytes, bool text, ::onnx::ModelProto &model,
                   const std::string *directory, ExternalData *external, std::string &error) {
  // The ONNX library reports errors by throwing (and may throw anything);
  // nothing gets past here.
  const char *stage = "parsing";
  try {
    if (text) {
      ::onnx::OnnxParser parser(bytes.c_str());
      auto status = parser.Parse(model);
      if (!status.IsOK()) {
        error = "not valid ONNX text: " + oneLine(status.ErrorMessage());
        return false;
      }
    } else if (!model.ParseFromString(bytes)) {
      error = "not a valid ONNX model (truncated or not an ONNX protobuf)";
      return false;
    }
    if (!model.has_graph()) {
      error = text ? "not a valid ONNX model: it has no graph"
                   : "not a valid ONNX model (truncated or not an ONNX protobuf)";
      return false;
    }
    if (directory && !loadExternalData(model, *directory, *external, error))
      return false;
    // ONNX shape inference is not robust against what zero rejects anyway
    // (it crashes on a Scan without a body): check first.
    if (!checkModel(model, /*allowFunctions=*/true, error, external))
      return false;
    stage = "shape inference";
    ::onnx::ShapeInferenceOptions options(/*check_type=*/false, /*strict_mode=*/0,
                                          /*data_prop=*/true);
    GuardedSchemaRegistry schemas;
    ::onnx::shape_inference::InferShapes(model, &schemas, options);
    // Operators zero implements through their ONNX function bodies; the
    // expanded nodes are checked as any others, then typed.
    bool expanded = false;
    stage = "function expansion";
    if (!expandFunctions(model, expanded, error))
      return false;
    if (expanded) {
      if (!checkModel(model, /*allowFunctions=*/false, error, external))
        return false;
      stage = "shape inference";
      ::onnx::shape_inference::InferShapes(model, &schemas, options);
    }
  } catch (const std::exception &e) {
    error = std::string("ONNX ") + stage + " failed: " + oneLine(e.what());
    return false;
  } catch (...) {
    error = std::string("ONNX ") + stage + " failed";
    return false;
  }
  return true;
}

/// One node's inputs as ONNX inference reads them, from what the caller
/// knows; it has no subgraphs and no symbolic data.
class NodeInferenceContext : public ::onnx::InferenceContext {
public:
  NodeInferenceContext(const ::onnx::NodeProto &node, const std::vector<NodeInput> &inputs)
      : node(node), inputs(inputs), outputs(node.output_size()) {}

  const ::onnx::AttributeProto *getAttribute(const std::string &name) const override {
    for (const auto &attribute : node.attribute())
      if (attribute.name() == name)
        return &attribute;
    return nullptr;
  }
  size_t getNumInputs() const override { return inputs.size(); }
  const ::onnx::TypeProto *getInputType(size_t index) const override {
    return index < inputs.size() ? inputs[index].type : nullptr;
  }
  const ::onnx::TensorProto *getInputData(size_t index) const override {
    return index < inputs.size() ? inputs[index].data : nullptr;
  }
  size_t getNumOutputs() const override { return outputs.size(); }
  ::onnx::TypeProto *getOutputType(size_t index) override {
    return index < outputs.size() ? &outputs[index] : nullptr;
  }
  ::onnx::GraphInferencer *getGraphAttributeInferencer(const std::string &) override {
    return nullptr;
  }
  const ::onnx::SparseTensorProto *getInputSparseData(size_t) const override { return nullptr; }
  const ::onnx::TensorShapeProto *getSymbolicInput(size_t) const override { return nullptr; }

  const ::onnx::NodeProto &node;
  const std::vector<NodeInput> &inputs;
  std::vector<::onnx::TypeProto> outputs;
};

} // namespace

std::vector<::onnx::TypeProto> inferNodeTypes(const ::onnx::NodeProto &node, int64_t opset,
                                              const std::vector<NodeInput> &inputs) {
  try {
    GuardedSchemaRegistry schemas;
    const ::onnx::OpSchema *schema =
        schemas.GetSchema(node.op_type(), static_cast<int>(opset), node.domain());
    if (!schema || !schema->has_type_and_shape_inference_function())
      return {};
    NodeInferenceContext context(node, inputs);
    schema->GetTypeAndShapeInferenceFunction()(context);
    return std::move(context.outputs);
  } catch (...) {
    return {};
  }
}

const ExternalData::Bytes *ExternalData::find(const std::string &name) const {
  auto it = initializers.find(name);
  return it == initializers.end() ? nullptr : &it->second;
}

bool checkOnnxModel(const ::onnx::ModelProto &model, std::string &error,
                    const ExternalData *external) {
  return checkModel(model, /*allowFunctions=*/false, error, external);
}

bool parseOnnxModel(const std::string &bytes, bool text, ::onnx::ModelProto &model,
                    std::string &error) {
  if (parseAndCheck(bytes, text, model, nullptr, nullptr, error))
    return true;
  error = oneLine(error);
  return false;
}

bool loadOnnxModel(const std::string &path, ::onnx::ModelProto &model, ExternalData &external,
                   std::string &error) {
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    error = "cannot read '" + path + "': it is a directory";
    return false;
  }
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    error = "cannot open '" + path + "'";
    return false;
  }
  // Protobuf parses at most 2 GB; larger models keep their weights apart.
  std::streamoff size = in.tellg();
  if (size < 0) {
    error = "cannot read '" + path + "'";
    return false;
  }
  if (size > std::numeric_limits<int>::max()) {
    error = "'" + path + "' is over 2 GB, more than protobuf parses: save the model with " +
            "its weights in external data (onnx.save_model(..., save_as_external_data=True))";
    return false;
  }
  std::string bytes(size > 0 ? static_cast<size_t>(size) : 0, '\0');
  in.seekg(0);
  if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()))) {
    error = "cannot read '" + path + "'";
    return false;
  }
  std::string directory = directory_of(path);
  if (parseAndCheck(bytes, endsWith(path, ".onnxtxt"), model, &directory, &external, error))
    return true;
  error = oneLine(error);
  return false;
}

} // namespace zero::frontend

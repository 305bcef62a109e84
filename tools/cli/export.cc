// tilestage export: one field of one record as a .npy file.
#include <iostream>

#include "tiling/npy.h"
#include "tiling/store.h"
#include "tools/cli/command.h"

namespace tilestage::cli {
namespace {

struct ExportArgs {
  std::string dir, field = "x", out;
  uint64_t record = 0;
};

Status RunExport(const ExportArgs& args) {
  TS_ASSIGN_OR_RETURN(auto store, Store::Open(LocalStorage(), args.dir));
  TS_ASSIGN_OR_RETURN(Sample sample, store->Read(args.record));
  const Array* array = sample.Find(args.field);
  if (!array) {
    std::string names;
    for (const auto& f : sample.fields) names += (names.empty() ? "" : ", ") + f.name;
    return NotFound("store ", args.dir, ": record ", args.record, " has no field '", args.field,
                    "' (fields: ", names, ")");
  }
  TS_RETURN_IF_ERROR(LocalStorage()->WriteAtomic(args.out, EncodeNpy(*array)));
  std::cout << "wrote " << array->Describe() << " to " << args.out << "\n";
  return Status::Ok();
}

TS_REGISTER_COMMAND([](CLI::App& root, int* exit_code) {
  auto args = std::make_shared<ExportArgs>();
  CLI::App* cmd = root.add_subcommand("export", "Write one field of one record as .npy");
  cmd->add_option("store", args->dir, "Store directory")->required();
  cmd->add_option("--record", args->record, "Global record index")->required();
  cmd->add_option("--field", args->field, "Field name")->capture_default_str();
  cmd->add_option("--out", args->out, "Output .npy file")->required();
  cmd->callback([=] { *exit_code = Report(RunExport(*args)); });
});

}  // namespace
}  // namespace tilestage::cli

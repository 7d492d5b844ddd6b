import Foundation
import Optimized

// The `verify` command line: one subcommand per file, dispatched by name.

let commands: [any VerifyCommand.Type] = [
  InfoCommand.self,
  PhantomCommand.self,
  ReproduceCommand.self,
  AblateCommand.self,
  ProfileCommand.self,
  ExportWeightsCommand.self,
  EquivarianceCommand.self,
  CompareCommand.self,
]

func usage(_ commands: [any VerifyCommand.Type]) -> String {
  var text = "usage: verify <command> [options]\n\ncommands:\n"
  for command in commands {
    text += "  \(command.name.padding(toLength: 14, withPad: " ", startingAt: 0)) \(command.summary)\n"
  }
  return text + "\n`verify <command> --help` describes a command's options."
}

// Keep freed tensors in the heap instead of unmapping them (page faults cost more than the kernels).
retainFreedMemory()

if let problem = unsupportedCPU() {
  FileHandle.standardError.write(Data("verify: error: \(problem)\n".utf8))
  exit(1)
}

var arguments = Array(CommandLine.arguments.dropFirst())
guard let name = arguments.first, name != "--help", name != "-h", name != "help" else {
  print(usage(commands))
  exit(arguments.isEmpty ? 64 : 0)
}
arguments.removeFirst()
guard let command = commands.first(where: { $0.name == name }) else {
  FileHandle.standardError.write(Data("verify: error: unknown command '\(name)'\n\n\(usage(commands))\n".utf8))
  exit(64)
}
do {
  var options = try Options(arguments, spec: command.options)
  if options.flag("help") {
    print(command.help)
    exit(0)
  }
  try command.run(&options)
  exit(0)
} catch let error as VerifyError {
  FileHandle.standardError.write(Data("verify \(name): error: \(error.message)\n".utf8))
  exit(error.exitCode)
} catch {
  FileHandle.standardError.write(Data("verify \(name): error: \(error)\n".utf8))
  exit(1)
}

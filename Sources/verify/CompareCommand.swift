import Experiment
import Foundation

/// `verify compare A B`: two run folders paired by downstream run stage (`FolderComparison`).
enum CompareCommand: VerifyCommand {
  static let name = "compare"
  static let summary = "pair the finished runs of two run folders: test Dice B − A with 95% t-intervals"
  static let options = [OptionSpec("json", value: true), OptionSpec("verbose", value: false)]
  static let help = """
    usage: verify compare DIR_A DIR_B [--json FILE] [--verbose]

    Pairs two run folders of the same plan run with one setting changed (e.g. `--max-epochs 1000`
    against the default): every downstream run stage (run-METHOD-B-D, incontext-BACKBONE-bB-dD)
    finished in both is one paired draw (same method, budget and draw: the same patients and
    seed). Per method and budget it prints the number of pairs, the mean test Dice in each folder
    (the results table's figure, read from the stage files), the mean difference B − A in Dice
    points with its standard error and 95% t-interval, the total seconds of each side and their
    ratio B / A, and how the runs stopped (patience or the epoch cap); then every pair's Dice,
    steps, best step, seconds, stop reason and (for the supervised baseline) chosen learning
    rate, saying when the two folders' rate searches chose different rates. It also says which
    config.json fields differ between the folders (their values in A and B), which builds computed
    the paired stages, and how many stages finished in one folder only. Reads the folders and
    writes nothing into them.

      --json FILE   also write the comparison as JSON (pairs, groups, one-sided stages,
                    configuration differences, builds).
      --verbose     name the stages finished in one folder only.

    No stage finished in both folders is not an error: it says so. A missing folder, one without
    config.json, or a stage file that does not decode is an error naming the file.
    """

  static func run(_ options: inout Options) throws {
    guard options.positional.count == 2 else {
      throw VerifyError("expects two run folders, DIR_A and DIR_B (see --help)", exitCode: 64)
    }
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    let folders = options.positional.map { URL(fileURLWithPath: $0, relativeTo: cwd).standardizedFileURL }
    let comparison = try FolderComparison(a: folders[0], b: folders[1])
    print(comparison.text(verbose: options.flag("verbose")))
    if let json = options.path("json", relativeTo: cwd) {
      try writeAtomically(try comparison.json(), to: json)
      print("\nWrote \(json.path).")
    }
  }
}

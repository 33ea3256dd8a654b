import FuzzTargets

#if canImport(Glibc)
    import Glibc
#endif

// libFuzzer's driver, called from this executable's own entry point: SwiftPM names an executable's
// `main` after its module (`enchufe_fuzz_main`), so the fuzzer's `main` cannot be used and the
// build links libFuzzer's no-main runtime instead (scripts/fuzz).
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// The target chosen by `ENCHUFE_FUZZ_TARGET` (a C callback cannot capture it).
nonisolated(unsafe) var target: (@Sendable ([UInt8]) -> Void)?

@_cdecl("enchufe_fuzz_main")
func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    let name = getenv("ENCHUFE_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let chosen = FuzzTargets.all[name] else {
        print("set ENCHUFE_FUZZ_TARGET to one of: \(FuzzTargets.all.keys.sorted().joined(separator: ", "))")
        return 2
    }
    target = chosen
    var argc = argc
    var argv = argv
    return runDriver(&argc, &argv) { data, size in
        target?(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
        return 0
    }
}

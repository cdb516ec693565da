// moq_ffi.Build.cs - Unreal Engine external module for moq-ffi (Media over QUIC, C ABI).
//
// Copy the whole ThirdParty/moq_ffi folder of the SDK's Unreal layout to
// <YourProject or YourPlugin>/Source/ThirdParty/moq_ffi, then add "moq_ffi" to
// PublicDependencyModuleNames in the Build.cs of the module that uses it, and
// #include "moq_ffi.h" (C API) or "moq_ffi.hpp" (C++17 wrapper; Unreal builds with C++17/20).
//
// Layout (one folder per platform, filled by scripts/package.sh on that platform):
//   include/                      moq_ffi.h, moq_ffi.hpp
//   lib/Linux/libmoq_ffi.so|.a    lib/Win64/moq_ffi.dll.lib|moq_ffi.lib    lib/Mac/libmoq_ffi.dylib|.a
//   bin/Linux/libmoq_ffi.so       bin/Win64/moq_ffi.dll                    bin/Mac/libmoq_ffi.dylib
//
// Shared library (default): linked against, and staged next to the game/editor binaries with
// RuntimeDependencies so packaged builds carry it. Set bUseStaticLibrary = true to link the
// static library instead (no file to stage; defines MOQ_FFI_STATIC).
using System.IO;
using UnrealBuildTool;

public class moq_ffi : ModuleRules
{
	public moq_ffi(ReadOnlyTargetRules Target) : base(Target)
	{
		Type = ModuleType.External;
		bool bUseStaticLibrary = false;

		PublicIncludePaths.Add(Path.Combine(ModuleDirectory, "include"));

		if (Target.Platform == UnrealTargetPlatform.Win64)
		{
			string LibDir = Path.Combine(ModuleDirectory, "lib", "Win64");
			string BinDir = Path.Combine(ModuleDirectory, "bin", "Win64");
			if (bUseStaticLibrary)
			{
				PublicDefinitions.Add("MOQ_FFI_STATIC=1");
				PublicAdditionalLibraries.Add(Path.Combine(LibDir, "moq_ffi.lib"));
				PublicSystemLibraries.AddRange(new string[] {
					"ws2_32.lib", "userenv.lib", "bcrypt.lib", "ntdll.lib", "advapi32.lib",
					"kernel32.lib", "crypt32.lib", "secur32.lib", "ncrypt.lib", "iphlpapi.lib" });
			}
			else
			{
				PublicAdditionalLibraries.Add(Path.Combine(LibDir, "moq_ffi.dll.lib"));
				// Load it before first use: FPlatformProcess::GetDllHandle on the staged path
				// (see docs/guide/unreal.md); delay-loading keeps editor start-up independent of it.
				PublicDelayLoadDLLs.Add("moq_ffi.dll");
				RuntimeDependencies.Add("$(BinaryOutputDir)/moq_ffi.dll", Path.Combine(BinDir, "moq_ffi.dll"));
			}
		}
		else if (Target.Platform == UnrealTargetPlatform.Mac)
		{
			string LibDir = Path.Combine(ModuleDirectory, "lib", "Mac");
			string BinDir = Path.Combine(ModuleDirectory, "bin", "Mac");
			if (bUseStaticLibrary)
			{
				PublicDefinitions.Add("MOQ_FFI_STATIC=1");
				PublicAdditionalLibraries.Add(Path.Combine(LibDir, "libmoq_ffi.a"));
				PublicFrameworks.AddRange(new string[] { "CoreFoundation", "Security", "SystemConfiguration" });
			}
			else
			{
				PublicAdditionalLibraries.Add(Path.Combine(LibDir, "libmoq_ffi.dylib"));
				RuntimeDependencies.Add("$(BinaryOutputDir)/libmoq_ffi.dylib", Path.Combine(BinDir, "libmoq_ffi.dylib"));
			}
		}
		else if (Target.Platform == UnrealTargetPlatform.Linux)
		{
			string LibDir = Path.Combine(ModuleDirectory, "lib", "Linux");
			string BinDir = Path.Combine(ModuleDirectory, "bin", "Linux");
			if (bUseStaticLibrary)
			{
				PublicDefinitions.Add("MOQ_FFI_STATIC=1");
				PublicAdditionalLibraries.Add(Path.Combine(LibDir, "libmoq_ffi.a"));
				PublicSystemLibraries.AddRange(new string[] { "gcc_s", "util", "rt", "pthread", "m", "dl" });
			}
			else
			{
				PublicAdditionalLibraries.Add(Path.Combine(LibDir, "libmoq_ffi.so"));
				RuntimeDependencies.Add("$(BinaryOutputDir)/libmoq_ffi.so", Path.Combine(BinDir, "libmoq_ffi.so"));
			}
		}
	}
}

; Inno Setup 6 script of LabelTune for Windows (x64). Built by installer/build.py after PyInstaller, as
;   ISCC /DAppVersion=<version> /DBundleDir=<dist\labeltune> /DIconFile=<build\labeltune.ico> /O<dist> labeltune.iss
; The app goes to Program Files (or the user's Programs folder without admin rights); projects, weights,
; caches and settings live in the user's folders (Documents\LabelTune, %LOCALAPPDATA%\labeltune), which
; neither a reinstall nor the uninstaller touches.

#ifndef AppVersion
  #error Pass /DAppVersion=<version from pyproject.toml> (installer/build.py does)
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\labeltune"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\labeltune.ico"
#endif

[Setup]
AppId={{6F1C2B7E-4D0A-4C55-9E0B-2A8F5C3D9B41}
AppName=LabelTune
AppVersion={#AppVersion}
AppVerName=LabelTune {#AppVersion}
AppPublisher=LabelTune developers
DefaultDirName={autopf}\LabelTune
DefaultGroupName=LabelTune
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=commandline dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=LabelTune-{#AppVersion}-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\labeltune-gui.exe
UninstallDisplayName=LabelTune {#AppVersion}
WizardStyle=modern
; a CUDA build of torch makes the bundle ~4-5 GB: fast LZMA2, and slices next to setup.exe
; (LabelTune-<version>-setup-1.bin, ...) because one setup file cannot exceed 2 GB
Compression=lzma2/fast
SolidCompression=no
DiskSpanning=yes
DiskSliceSize=max
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[InstallDelete]
; an install over an older one replaces the program files whole (no stale libraries); user data is elsewhere
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\LabelTune"; Filename: "{app}\labeltune-gui.exe"; WorkingDir: "{userdocs}"
Name: "{autodesktop}\LabelTune"; Filename: "{app}\labeltune-gui.exe"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Run]
Filename: "{app}\labeltune-gui.exe"; Description: "{cm:LaunchProgram,LabelTune}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; only what the program folder itself may hold; never {userdocs}\LabelTune nor {localappdata}\labeltune
Type: filesandordirs; Name: "{app}\_internal"

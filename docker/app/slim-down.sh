#!/bin/sh
# Remove from a Python runtime root filesystem what a running service never reads.
# Dockerfile.minimal runs this in a throwaway stage and copies the result into an empty
# image: deleting files in a later layer of the same image would not shrink it.
set -eu
python=$(command -v python3)
stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
sitedirs=$("$python" -c 'import site; print(" ".join(site.getsitepackages()))')

# 1. Package managers, their databases and installers: an image is rebuilt, never upgraded.
rm -rf /var/lib/apt /var/lib/dpkg /var/cache/apt /var/cache/debconf /var/log/* /etc/apt \
       /usr/lib/apt /usr/bin/apt* /usr/bin/dpkg* /usr/share/python-wheels /usr/local/share/python-wheels
for dir in $sitedirs /usr/lib/python3/dist-packages; do
  rm -rf "$dir"/pip "$dir"/pip-* "$dir"/setuptools* "$dir"/pkg_resources "$dir"/wheel \
         "$dir"/wheel-* "$dir"/_distutils_hack "$dir"/distutils-precedence.pth
done

# 2. Perl (only dpkg needs it) and glibc's iconv charsets (Python has its own codecs).
rm -rf /usr/bin/perl* /usr/lib/*-linux-gnu/perl* /usr/share/perl* /usr/lib/*-linux-gnu/gconv

# 3. Standard-library parts for interactive use or for building packages.
(cd "$stdlib" && rm -rf ensurepip idlelib tkinter turtledemo lib2to3 pydoc_data distutils test)

# 4. Manuals, translations and C headers (licences in /usr/share/doc stay).
rm -rf /usr/share/man /usr/share/info /usr/share/locale /usr/local/share/man /usr/local/include

# 5. Shared libraries that nothing left links to. ldd lists what every remaining program and
#    extension module needs; libraries glibc loads by name at run time (NSS for user names,
#    libgcc_s for thread exit) are kept by name, since ldd cannot see them.
needed=$(mktemp)
find / -xdev -type f \( -perm -u+x -o -name '*.so*' \) 2>/dev/null \
  | while read -r f; do ldd "$f" 2>/dev/null || true; done \
  | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' \
  | xargs -r realpath | sort -u > "$needed"
for lib in /usr/lib/*-linux-gnu/lib*.so* /lib/*-linux-gnu/lib*.so*; do
  [ -f "$lib" ] && [ ! -L "$lib" ] || continue
  case "$(basename "$lib")" in libnss_*|libgcc_s*|libresolv*|libc.so*|libm.so*|ld-linux*) continue ;; esac
  grep -qxF "$(realpath "$lib")" "$needed" || rm -f "$lib"
done
rm -f "$needed"

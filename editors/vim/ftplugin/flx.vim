" Vim filetype plugin for flx: comments, 4-space indentation, `gf` on `use` paths.
if exists("b:did_ftplugin")
  finish
endif
let b:did_ftplugin = 1

setlocal comments=:# commentstring=#\ %s
setlocal expandtab shiftwidth=4 softtabstop=4 tabstop=4
setlocal suffixesadd=.flx
setlocal iskeyword=@,48-57,_

let b:undo_ftplugin = "setlocal comments< commentstring< expandtab< shiftwidth< softtabstop< tabstop<"
      \ . " suffixesadd< iskeyword<"

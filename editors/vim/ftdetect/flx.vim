" flx scripts: *.flx
autocmd BufNewFile,BufRead *.flx setfiletype flx

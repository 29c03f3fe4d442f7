/*
 * A PKCS#11 module for the fault tests: it forwards every call to another
 * module (SG_FAULT_PKCS11_TARGET, e.g. SoftHSM2) and, while the file named by
 * SG_FAULT_PKCS11_FLAG exists, fails the calls a key provider makes the way
 * a network HSM's client library does when the HSM is unreachable:
 *
 * - on a session (find, read attributes, encrypt, decrypt, sign):
 *   CKR_DEVICE_REMOVED, so the caller's session is gone;
 * - looking for the token or opening a session (C_GetSlotList,
 *   C_GetTokenInfo, C_OpenSession, C_Login): CKR_DEVICE_ERROR.
 *
 * Removing the file makes the module work again (new sessions succeed).
 * SoftHSM2 cannot be made to fail like this from outside: with its token
 * directory gone, an open session just finds no objects.
 *
 * Self-contained (no PKCS#11 headers needed): the function list is the
 * standard v2.x layout, a version followed by 68 function pointers; only
 * the entries below are replaced, by index.
 *
 *   cc -shared -fPIC -O2 -o pkcs11_fault.so pkcs11_fault.c -ldl
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef unsigned long CK_ULONG;
typedef CK_ULONG CK_RV;

#define CKR_OK 0x0UL
#define CKR_GENERAL_ERROR 0x5UL
#define CKR_DEVICE_ERROR 0x30UL
#define CKR_DEVICE_REMOVED 0x32UL

#define N_FUNCTIONS 68
enum {
    I_GET_FUNCTION_LIST = 3,
    I_GET_SLOT_LIST = 4,
    I_GET_TOKEN_INFO = 6,
    I_OPEN_SESSION = 12,
    I_LOGIN = 18,
    I_GET_ATTRIBUTE_VALUE = 24,
    I_FIND_OBJECTS_INIT = 26,
    I_FIND_OBJECTS = 27,
    I_ENCRYPT_INIT = 29,
    I_ENCRYPT = 30,
    I_DECRYPT_INIT = 33,
    I_DECRYPT = 34,
    I_SIGN_INIT = 42,
    I_SIGN = 43,
};

typedef struct {
    unsigned char major, minor;
} Version;

typedef struct {
    Version version;
    void *f[N_FUNCTIONS];
} FunctionList;

typedef CK_RV (*GetFunctionListFn)(FunctionList **);

static FunctionList *real;
static FunctionList ours;

static int down(void)
{
    const char *flag = getenv("SG_FAULT_PKCS11_FLAG");
    return flag != NULL && access(flag, F_OK) == 0;
}

typedef CK_RV (*Fn3)(CK_ULONG, void *, void *);
typedef CK_RV (*Fn4)(CK_ULONG, void *, void *, void *);
typedef CK_RV (*Fn5)(CK_ULONG, void *, void *, void *, void *);

#define FORWARD3(name, index, error)                                  \
    static CK_RV name(CK_ULONG a, void *b, void *c)                   \
    {                                                                 \
        if (down())                                                   \
            return error;                                             \
        return ((Fn3)real->f[index])(a, b, c);                        \
    }
#define FORWARD4(name, index, error)                                  \
    static CK_RV name(CK_ULONG a, void *b, void *c, void *d)          \
    {                                                                 \
        if (down())                                                   \
            return error;                                             \
        return ((Fn4)real->f[index])(a, b, c, d);                     \
    }
#define FORWARD5(name, index, error)                                  \
    static CK_RV name(CK_ULONG a, void *b, void *c, void *d, void *e) \
    {                                                                 \
        if (down())                                                   \
            return error;                                             \
        return ((Fn5)real->f[index])(a, b, c, d, e);                  \
    }

/* CK_BBOOL tokenPresent travels as an integer argument like CK_ULONG. */
FORWARD3(get_slot_list, I_GET_SLOT_LIST, CKR_DEVICE_ERROR)
static CK_RV get_token_info(CK_ULONG slot, void *info)
{
    if (down())
        return CKR_DEVICE_ERROR;
    return ((CK_RV(*)(CK_ULONG, void *))real->f[I_GET_TOKEN_INFO])(slot, info);
}
FORWARD5(open_session, I_OPEN_SESSION, CKR_DEVICE_ERROR)
FORWARD4(login, I_LOGIN, CKR_DEVICE_ERROR)
FORWARD4(get_attribute_value, I_GET_ATTRIBUTE_VALUE, CKR_DEVICE_REMOVED)
FORWARD3(find_objects_init, I_FIND_OBJECTS_INIT, CKR_DEVICE_REMOVED)
FORWARD4(find_objects, I_FIND_OBJECTS, CKR_DEVICE_REMOVED)
FORWARD3(encrypt_init, I_ENCRYPT_INIT, CKR_DEVICE_REMOVED)
FORWARD5(encrypt, I_ENCRYPT, CKR_DEVICE_REMOVED)
FORWARD3(decrypt_init, I_DECRYPT_INIT, CKR_DEVICE_REMOVED)
FORWARD5(decrypt, I_DECRYPT, CKR_DEVICE_REMOVED)
FORWARD3(sign_init, I_SIGN_INIT, CKR_DEVICE_REMOVED)
FORWARD5(sign, I_SIGN, CKR_DEVICE_REMOVED)

CK_RV C_GetFunctionList(FunctionList **list);

CK_RV C_GetFunctionList(FunctionList **list)
{
    if (list == NULL)
        return CKR_GENERAL_ERROR;
    if (real == NULL) {
        const char *target = getenv("SG_FAULT_PKCS11_TARGET");
        void *handle = target ? dlopen(target, RTLD_NOW | RTLD_LOCAL) : NULL;
        GetFunctionListFn get = handle ? (GetFunctionListFn)dlsym(handle, "C_GetFunctionList") : NULL;
        if (get == NULL || get(&real) != CKR_OK || real == NULL)
            return CKR_GENERAL_ERROR;
        memcpy(&ours, real, sizeof ours);
        ours.f[I_GET_FUNCTION_LIST] = (void *)C_GetFunctionList;
        ours.f[I_GET_SLOT_LIST] = (void *)get_slot_list;
        ours.f[I_GET_TOKEN_INFO] = (void *)get_token_info;
        ours.f[I_OPEN_SESSION] = (void *)open_session;
        ours.f[I_LOGIN] = (void *)login;
        ours.f[I_GET_ATTRIBUTE_VALUE] = (void *)get_attribute_value;
        ours.f[I_FIND_OBJECTS_INIT] = (void *)find_objects_init;
        ours.f[I_FIND_OBJECTS] = (void *)find_objects;
        ours.f[I_ENCRYPT_INIT] = (void *)encrypt_init;
        ours.f[I_ENCRYPT] = (void *)encrypt;
        ours.f[I_DECRYPT_INIT] = (void *)decrypt_init;
        ours.f[I_DECRYPT] = (void *)decrypt;
        ours.f[I_SIGN_INIT] = (void *)sign_init;
        ours.f[I_SIGN] = (void *)sign;
    }
    *list = &ours;
    return CKR_OK;
}
